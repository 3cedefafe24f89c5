// Package deploy holds what it takes to run signsvr as a service: the example
// configuration (signsvr.example.yaml), the Kubernetes base (kubernetes/, a Go
// module of its own so that the Kubernetes API types stay out of the server's
// dependencies) and the tests of the container image that the top-level Dockerfile
// builds. Base images cannot be pulled everywhere the tests run, so the tests read
// the Dockerfile and check what must hold of any image built from it: its targets,
// the user it runs as, the ports and volumes it declares against the configuration.
package deploy
