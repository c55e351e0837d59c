// Package testcluster does what the e2e suite and the API-server benchmark (e2e/bench) both do to a test
// control plane: register agentgate's webhook configurations, as manifests/base holds them, pointed at a
// server on loopback, write a kubeconfig for a child process, and stop that process.
package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// Webhooks says where the copies of manifests/base/webhooks.yaml send their reviews.
type Webhooks struct {
	// Name names both configurations, so that the manifests' own names stay free.
	Name string
	// BaseURL ("https://127.0.0.1:PORT") replaces each entry's Service; the entry's path is kept.
	// envtest's own rewrite is not used: it joins host and path with a doubled slash ("https://host//mutate").
	BaseURL  string
	CABundle []byte
	// NamespaceSelector, when set, replaces every entry's namespaceSelector, and NamePrefix is put before
	// every entry's name (the API server's metrics name entries: copies must not share names).
	NamespaceSelector map[string]string
	NamePrefix        string
}

// Install creates both configurations from root/manifests/base/webhooks.yaml.
func (w Webhooks) Install(ctx context.Context, client kubernetes.Interface, root string) error {
	data, err := os.ReadFile(filepath.Join(root, "manifests", "base", "webhooks.yaml"))
	if err != nil {
		return err
	}
	docs, err := SplitYAML(data)
	if err != nil {
		return err
	}
	arv1 := client.AdmissionregistrationV1()
	for _, doc := range docs {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return err
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			var c admissionregistrationv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(doc, &c); err != nil {
				return err
			}
			c.Name = w.Name
			for i := range c.Webhooks {
				w.point(&c.Webhooks[i].Name, &c.Webhooks[i].ClientConfig, &c.Webhooks[i].NamespaceSelector)
			}
			if _, err := arv1.MutatingWebhookConfigurations().Create(ctx, &c, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating MutatingWebhookConfiguration %s: %w", c.Name, err)
			}
		case "ValidatingWebhookConfiguration":
			var c admissionregistrationv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(doc, &c); err != nil {
				return err
			}
			c.Name = w.Name
			for i := range c.Webhooks {
				w.point(&c.Webhooks[i].Name, &c.Webhooks[i].ClientConfig, &c.Webhooks[i].NamespaceSelector)
			}
			if _, err := arv1.ValidatingWebhookConfigurations().Create(ctx, &c, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating ValidatingWebhookConfiguration %s: %w", c.Name, err)
			}
		}
	}
	return nil
}

func (w Webhooks) point(name *string, cc *admissionregistrationv1.WebhookClientConfig, ns **metav1.LabelSelector) {
	url := w.BaseURL + *cc.Service.Path
	cc.URL, cc.Service, cc.CABundle = &url, nil, w.CABundle
	if w.NamespaceSelector != nil {
		*ns = &metav1.LabelSelector{MatchLabels: w.NamespaceSelector}
	}
	*name = w.NamePrefix + *name
}

// SplitYAML splits a multi-document YAML stream, dropping empty documents.
func SplitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			out = append(out, doc)
		}
	}
}

// WriteKubeconfig writes cfg (envtest's admin client) as a kubeconfig file for a child process.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kc.CurrentContext = "test"
	return clientcmd.WriteToFile(*kc, path)
}

// Stop sends p SIGTERM (agentgate drains its in-flight reviews) and waits until exited is closed; after grace
// it kills p and waits again.
func Stop(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}
