package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/prometheus/client_golang/prometheus"
)

// ExpiryMetric is the one definition of agentgate_certificate_expiry_timestamp_seconds{cert="ca|serving"},
// exported by the Rotator for self-managed certificates and by FileExpiry for certificates read from files,
// so that dashboards and alerts read one series whichever way certificates come.
const ExpiryMetric = "agentgate_certificate_expiry_timestamp_seconds"

const expiryHelp = "NotAfter of the certificate this replica serves (serving) and of the CA that signed it (ca), as a Unix timestamp."

var expiryLabels = []string{"cert"}

func newExpiryGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ExpiryMetric, Help: expiryHelp}, expiryLabels)
}

// FileExpiry exports ExpiryMetric for certificates read from files (cert-manager's, or a self-signed pair):
// cert="serving" for the certificate served now, cert="ca" for CAFile when there is one. Read at every scrape,
// so a renewal by cert-manager shows at once.
type FileExpiry struct {
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	CAFile         string
}

var expiryDesc = prometheus.NewDesc(ExpiryMetric, expiryHelp, expiryLabels, nil)

func (c *FileExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c *FileExpiry) Collect(ch chan<- prometheus.Metric) {
	var leaf *x509.Certificate
	if cert, err := c.GetCertificate(nil); err == nil && cert != nil {
		leaf = cert.Leaf
		if leaf == nil && len(cert.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(cert.Certificate[0])
		}
	}
	if leaf != nil {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), "serving")
	}
	data, err := os.ReadFile(c.CAFile)
	if err != nil {
		return
	}
	cas, err := ParseCertificatesPEM(data)
	if err != nil || len(cas) == 0 {
		return
	}
	// The CA that signed the served certificate, when the file holds several.
	ca := cas[0]
	for _, cand := range cas {
		if leaf != nil && leaf.CheckSignatureFrom(cand) == nil {
			ca = cand
			break
		}
	}
	ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(ca.NotAfter.Unix()), "ca")
}
