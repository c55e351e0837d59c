package policy

// Checks still to be written; each moves to its own check_<id>.go.
var (
	checkHostProbes         = check{id: "hostProbes", run: func(*Policy, *podView, *report) {}}
	checkWindowsHostProcess = check{id: "windowsHostProcess", run: func(*Policy, *podView, *report) {}}
	checkSeccomp            = check{id: "seccomp", linuxOnly: true, run: func(*Policy, *podView, *report) {}}
	checkAppArmor           = check{id: "appArmor", linuxOnly: true, run: func(*Policy, *podView, *report) {}}
	checkSELinux            = check{id: "seLinux", linuxOnly: true, run: func(*Policy, *podView, *report) {}}
	checkProcMount          = check{id: "procMount", linuxOnly: true, run: func(*Policy, *podView, *report) {}}
	checkSysctls            = check{id: "sysctls", linuxOnly: true, run: func(*Policy, *podView, *report) {}}
	checkVolumeTypes        = check{id: "volumeTypes", run: func(*Policy, *podView, *report) {}}
	checkTokenProjection    = check{id: "serviceAccountTokenProjection", run: func(*Policy, *podView, *report) {}}
	checkCommands           = check{id: "commands", run: func(*Policy, *podView, *report) {}}
	checkEnvSecrets         = check{id: "envSecrets", run: func(*Policy, *podView, *report) {}}
)
