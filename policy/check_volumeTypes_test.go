package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckVolumeTypes(t *testing.T) {
	const allowed = "configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret"
	vol := func(name string, src corev1.VolumeSource) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: src})
		}
	}
	cases := []checkCase{
		{name: "valid"},
		{
			name: "every allowed type",
			tweak: func(p *corev1.Pod) {
				for _, src := range []corev1.VolumeSource{
					{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
					{CSI: &corev1.CSIVolumeSource{Driver: "csi.example.com"}},
					{DownwardAPI: &corev1.DownwardAPIVolumeSource{}},
					{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}},
					{Ephemeral: &corev1.EphemeralVolumeSource{}},
					{Image: &corev1.ImageVolumeSource{Reference: testImage}},
					{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}},
					{Projected: &corev1.ProjectedVolumeSource{}},
					{Secret: &corev1.SecretVolumeSource{SecretName: "s"}},
				} {
					vol("v", src)(p)
				}
			},
		},
		// The API server defaults a volume without a source to emptyDir before admission.
		{name: "no source", tweak: vol("scratch", corev1.VolumeSource{})},
		// Reported by the hostPath check alone.
		{name: "hostPath", tweak: vol("node", corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}})},
		{
			name:  "nfs",
			tweak: vol("share", corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs.example.com", Path: "/exports"}}),
			want:  []string{`spec.volumes[1] | nfs volume "share" | ` + allowed},
			msgs: []string{`[volumeTypes] nfs volumes are not allowed for agent pods: use a persistentVolumeClaim, or a csi or ephemeral volume ` +
				`(found nfs volume "share"; allowed: ` + allowed + `)`},
		},
		{
			name: "several",
			tweak: func(p *corev1.Pod) {
				vol("repo", corev1.VolumeSource{GitRepo: &corev1.GitRepoVolumeSource{Repository: "https://example.com/r.git"}})(p)
				vol("node", corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}})(p)
				vol("block", corev1.VolumeSource{RBD: &corev1.RBDVolumeSource{CephMonitors: []string{"m"}, RBDImage: "i"}})(p)
				vol("flex", corev1.VolumeSource{FlexVolume: &corev1.FlexVolumeSource{Driver: "d"}})(p)
			},
			want: []string{
				`spec.volumes[1] | gitRepo volume "repo" | ` + allowed,
				`spec.volumes[3] | rbd volume "block" | ` + allowed,
				`spec.volumes[4] | flexVolume volume "flex" | ` + allowed,
			},
		},
		{
			name:  "a restricted source beside an allowed one",
			tweak: vol("both", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}, Cinder: &corev1.CinderVolumeSource{VolumeID: "v"}}),
			want:  []string{`spec.volumes[1] | cinder volume "both" | ` + allowed},
		},
	}
	// Every restricted type of Pod Security's restrictedVolumes list but hostPath.
	for _, tc := range []struct {
		typ string
		src corev1.VolumeSource
	}{
		{"gcePersistentDisk", corev1.VolumeSource{GCEPersistentDisk: &corev1.GCEPersistentDiskVolumeSource{}}},
		{"awsElasticBlockStore", corev1.VolumeSource{AWSElasticBlockStore: &corev1.AWSElasticBlockStoreVolumeSource{}}},
		{"gitRepo", corev1.VolumeSource{GitRepo: &corev1.GitRepoVolumeSource{}}},
		{"nfs", corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{}}},
		{"iscsi", corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{}}},
		{"glusterfs", corev1.VolumeSource{Glusterfs: &corev1.GlusterfsVolumeSource{}}},
		{"rbd", corev1.VolumeSource{RBD: &corev1.RBDVolumeSource{}}},
		{"flexVolume", corev1.VolumeSource{FlexVolume: &corev1.FlexVolumeSource{}}},
		{"cinder", corev1.VolumeSource{Cinder: &corev1.CinderVolumeSource{}}},
		{"cephfs", corev1.VolumeSource{CephFS: &corev1.CephFSVolumeSource{}}},
		{"flocker", corev1.VolumeSource{Flocker: &corev1.FlockerVolumeSource{}}},
		{"fc", corev1.VolumeSource{FC: &corev1.FCVolumeSource{}}},
		{"azureFile", corev1.VolumeSource{AzureFile: &corev1.AzureFileVolumeSource{}}},
		{"vsphereVolume", corev1.VolumeSource{VsphereVolume: &corev1.VsphereVirtualDiskVolumeSource{}}},
		{"quobyte", corev1.VolumeSource{Quobyte: &corev1.QuobyteVolumeSource{}}},
		{"azureDisk", corev1.VolumeSource{AzureDisk: &corev1.AzureDiskVolumeSource{}}},
		{"photonPersistentDisk", corev1.VolumeSource{PhotonPersistentDisk: &corev1.PhotonPersistentDiskVolumeSource{}}},
		{"portworxVolume", corev1.VolumeSource{PortworxVolume: &corev1.PortworxVolumeSource{}}},
		{"scaleIO", corev1.VolumeSource{ScaleIO: &corev1.ScaleIOVolumeSource{}}},
		{"storageos", corev1.VolumeSource{StorageOS: &corev1.StorageOSVolumeSource{}}},
	} {
		cases = append(cases, checkCase{
			name: tc.typ, tweak: vol("v", tc.src),
			want: []string{"spec.volumes[1] | " + tc.typ + ` volume "v" | ` + allowed},
		})
	}
	runCheckCases(t, checkVolumeTypes, cases)
}
