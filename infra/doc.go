// Package infra holds what eventlistener knows of the infrastructure around
// it: clients for what the sibling actors watch (Redis with Sentinel, HAProxy,
// the virtual IP), and, beside the code, the configuration files that
// docker-compose.yml mounts (kibana/objects.ndjson: the data view and
// dashboard imported into Kibana).
package infra
