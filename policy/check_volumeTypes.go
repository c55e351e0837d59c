package policy

import corev1 "k8s.io/api/core/v1"

// volumeTypes: network and node-attached volume types reach storage outside the cluster's control (or the
// node's), with credentials the agent should not hold.
//
// Restricted fields:
//
//	spec.volumes[*].{gcePersistentDisk,awsElasticBlockStore,gitRepo,nfs,iscsi,glusterfs,rbd,flexVolume,cinder,
//	                 cephfs,flocker,fc,azureFile,vsphereVolume,quobyte,azureDisk,photonPersistentDisk,
//	                 portworxVolume,scaleIO,storageos}
//
// Allowed values: unset, that is, only the volume types of Pod Security restricted v1.37 (restrictedVolumes):
// configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret.
// Not configurable. hostPath is restricted too, but reported by the hostPath check alone. A volume with no
// source at all is allowed: the API server defaults it to emptyDir before admission. A restricted source is
// denied even beside an allowed one (Pod Security lets that pass, the API server refuses it anyway).
// Reported at the volume (spec.volumes[i]), found naming its type and name.
var checkVolumeTypes = check{id: "volumeTypes", run: func(_ *Policy, pod *podView, r *report) {
	for i := range pod.spec.Volumes {
		v := &pod.spec.Volumes[i]
		if t := restrictedVolumeType(&v.VolumeSource); t != "" {
			r.add("volumeTypes", pod.specPath.Child("volumes").Index(i), t+" volume "+quote(v.Name),
				"configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret",
				t+" volumes are not allowed for agent pods: use a persistentVolumeClaim, or a csi or ephemeral volume")
		}
	}
}}

// restrictedVolumeType names the first restricted source the volume sets, or returns "" when it sets none.
func restrictedVolumeType(v *corev1.VolumeSource) string {
	switch {
	case v.GCEPersistentDisk != nil:
		return "gcePersistentDisk"
	case v.AWSElasticBlockStore != nil:
		return "awsElasticBlockStore"
	case v.GitRepo != nil:
		return "gitRepo"
	case v.NFS != nil:
		return "nfs"
	case v.ISCSI != nil:
		return "iscsi"
	case v.Glusterfs != nil:
		return "glusterfs"
	case v.RBD != nil:
		return "rbd"
	case v.FlexVolume != nil:
		return "flexVolume"
	case v.Cinder != nil:
		return "cinder"
	case v.CephFS != nil:
		return "cephfs"
	case v.Flocker != nil:
		return "flocker"
	case v.FC != nil:
		return "fc"
	case v.AzureFile != nil:
		return "azureFile"
	case v.VsphereVolume != nil:
		return "vsphereVolume"
	case v.Quobyte != nil:
		return "quobyte"
	case v.AzureDisk != nil:
		return "azureDisk"
	case v.PhotonPersistentDisk != nil:
		return "photonPersistentDisk"
	case v.PortworxVolume != nil:
		return "portworxVolume"
	case v.ScaleIO != nil:
		return "scaleIO"
	case v.StorageOS != nil:
		return "storageos"
	}
	return ""
}
