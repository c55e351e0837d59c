// Package certs issues and rotates the webhook's TLS certificates. It knows
// nothing about policy.
//
// Two modes:
//
//   - SelfSigned writes a throwaway CA and serving certificate into a
//     directory, for `agentgate serve` run by hand without --cert-dir.
//   - Rotator keeps a CA and a serving certificate in a Secret, shared by all
//     replicas, and injects the CA into the caBundle of the webhook
//     configurations. (With cert-manager, none of this runs: the server reads
//     --cert-dir through controller-runtime's certwatcher.)
//
// Why a Rotator rather than cert-controller: expired or half-rotated webhook
// certificates are the classic way admission webhooks take clusters down.
// cert-controller swaps the CA in one step, so under failurePolicy: Fail
// admissions fail until every API server has the new caBundle and every
// replica serves the new certificate. The Rotator instead trusts the new CA
// first, signs with it only once every webhook configuration holds it and an
// overlap has passed, and drops the old CA only after another overlap. It
// uses random serial numbers and never exits the process.
//
// Why serve from memory (GetCertificate) rather than a mounted Secret: the
// kubelet syncs mounted Secrets with a delay of up to a minute or more, which
// would have to be added to every overlap; the Rotator watches the Secret and
// swaps the certificate at the next handshake.
//
// Why no leader election: the Secret is the source of truth and every write
// is a compare-and-swap on its resourceVersion. Replicas racing to create or
// renew all compute a replacement; one write wins, the others get a Conflict
// (or AlreadyExists), re-read, and adopt the winner's certificates.
package certs
