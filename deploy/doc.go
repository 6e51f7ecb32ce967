// Package deploy holds the checks of apmtel's deployment files, run by
// `go test ./deploy` without Docker or a cluster: docker-compose.yml and the
// Dockerfile are parsed and held to their security and ordering invariants,
// and the Helm chart under helm/apmtel is linted and rendered with Helm
// (built from source by scripts/helm.sh) and its manifests checked. The KEDA
// trigger's list key is compared with the key asynq really writes in Redis.
//
// README.md, "Deployment", lists what each check asserts.
package deploy
