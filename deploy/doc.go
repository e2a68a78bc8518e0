// Package deploy holds what operators plug in beside the engine: the
// Prometheus alert rules (prometheus/alerts.yml, with their unit tests in
// prometheus/alerts_test.yml). Its tests check them with promtool.
package deploy
