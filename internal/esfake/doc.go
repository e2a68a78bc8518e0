// Package esfake is an in-process imitation of an Elasticsearch 8 node for
// tests. It serves the bulk API, index templates, data streams, dynamic
// mappings and the read-back calls (refresh, count, search, get) closely
// enough that the same test can run against it or, when the environment
// variable TEST_ELASTICSEARCH_URL is set, against a real cluster (see Start).
// It also injects faults that a real cluster cannot be made to produce on
// demand: whole-request 413, 429 and 5xx answers, and per-item rejections.
package esfake
