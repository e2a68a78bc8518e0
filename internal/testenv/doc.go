// Package testenv starts real servers for eventlistener's tests: throw-away
// processes from the machine's own Debian packages, each on a random loopback
// port in a temporary folder of its own, stopped and removed by t.Cleanup.
//
// Postgres(t) gives a test its own PostgreSQL server. The test can take it down
// with Stop and bring it back with Start to check how the code under test lives
// through an outage. RedisServer(t) starts one redis-server; RedisSentinels(t)
// a master, a replica and three sentinels that fail over in about a second.
// HAProxy(t, cfg) runs haproxy over small test HTTP servers (TestHTTPServer)
// with its stats page and runtime API.
//
// Missing and RequireBinary hold the one rule for a dependency that is not
// installed: the test is skipped on a developer's machine and fails when the
// environment variable CI is true, in both cases naming the Debian package to
// install (./scripts/test installs them).
//
// Running as root (as CI does), servers that refuse to run as root are run as
// their Debian system user (postgres for PostgreSQL), in folders it owns.
//
// Every process started here gets a parent-death signal, so a test binary that
// crashes does not leave servers behind; folders that a crashed test binary
// left behind are removed by the next one that uses this package.
package testenv
