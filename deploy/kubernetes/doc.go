// Package kubernetes is the signsvr Kubernetes base (kustomization.yaml and the
// manifests beside it). It holds no code: its test decodes every manifest strictly
// into the official API types and checks that the objects agree with each other, with
// the server configuration they mount (loaded by signsvr's own loader) and with the
// image. It is a module of its own so that k8s.io/api stays out of the server's
// dependencies.
package kubernetes
