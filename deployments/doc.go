// Package deployments holds the deployment assets of remediator and the tests that keep
// them honest. It has no Go API; it exists so that `go test ./...` checks the files a
// Docker or Kubernetes user runs, without a Docker engine or a cluster:
//
//   - ../Dockerfile and ../.dockerignore: the container image (a static binary on
//     distroless, running as nonroot).
//   - ../docker-compose.yml with compose/remediator.yaml: the whole stack on a laptop — a
//     3-node NATS JetStream cluster, Jaeger, the Okta Workflows simulator (`remediator
//     flowsim`) and two worker replicas (`remediator run`).
//   - kubernetes/: production, `kubectl apply -k deployments/kubernetes`: the remediator
//     Deployment, its Service, PodDisruptionBudget, HorizontalPodAutoscaler (on the intake
//     backlog), the placeholder Secret for the flows' client tokens, and remediator.yaml, the
//     configuration kustomize turns into the ConfigMap remediator-config. NATS comes from the
//     official Helm chart with kubernetes/nats-values.yaml; kubernetes/monitoring/ has the
//     PodMonitor and the prometheus-adapter values that feed the autoscaler.
//   - kind/: the same on kind or minikube, with a plain NATS StatefulSet (no TLS; remediator's
//     three NATS roles, passwords in the placeholder Secret nats-auth) and two fixed replicas.
//   - nats/remediator-auth.conf: the three roles (worker, operator, publisher) with their
//     subject permissions for any NATS server, generated from broker.Permissions; compose and
//     kind load the same roles.
//
// The tests read these files with the ecosystem's own parsers: compose-go loads the compose
// file as `docker compose config` does; every Kubernetes manifest is decoded strictly into
// the k8s.io/api types (an unknown field fails, naming the file and the field); krusty builds
// the kustomizations; nats-server's parser reads nats.conf; config.Load reads remediator's
// configurations. On the loaded objects they check what a user would otherwise find out the
// hard way: probes on the wrong port or path, a grace period shorter than
// worker.shutdownTimeout, secrets not read from a Secret, containers that are not locked down
// or unbounded, budgets that block drains, an autoscaler on a metric nobody serves, NATS nodes
// that do not route to each other, mounts of files that do not exist. testdata/broken-* are
// deliberately broken copies that the checks must reject. Set NATS_CHART_VALUES to the NATS
// chart's values.yaml to also check that every key of nats-values.yaml is one the chart knows.
package deployments
