// Package deployments holds the deployment assets of remediator and the tests that keep
// them honest. It has no Go API; it exists so that `go test ./...` checks the files a
// Docker or Kubernetes user runs, without a Docker engine or a cluster:
//
//   - ../Dockerfile and ../.dockerignore: the container image (a static binary on
//     distroless, running as nonroot).
//   - ../docker-compose.yml with compose/remediator.yaml: the whole stack on a laptop — a
//     3-node NATS JetStream cluster, Jaeger, the Okta Workflows simulator (`remediator
//     flowsim`) and two worker replicas (`remediator run`).
//   - kubernetes/: plain manifests, applied with `kubectl apply -k deployments/kubernetes`: a
//     3-node NATS JetStream StatefulSet (the official NATS Helm chart is the recommended
//     path in production; these manifests are the reference of what remediator relies on),
//     the remediator Deployment, its Service, PodDisruptionBudget, the placeholder Secret for
//     the flows' client tokens, and kubernetes/remediator.yaml, the configuration that
//     kustomize turns into the ConfigMap remediator-config.
//
// The tests parse these files and check what a user would otherwise find out the hard way:
// configurations that config.Load rejects, probes on the wrong port or path, a grace period
// shorter than worker.shutdownTimeout, flow tokens that are not read from a Secret, NATS
// nodes that do not route to each other, mounts of files that do not exist, and a
// kustomization that forgets a manifest.
package deployments
