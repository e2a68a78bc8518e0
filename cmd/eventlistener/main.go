// Command eventlistener ingests events over HTTP, batches them and writes
// them to PostgreSQL and Elasticsearch, keeping what a store refused in a
// fallback log that `eventlistener replay` sends again.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v3"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func main() {
	if err := newApp().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "eventlistener:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is 1 for any failure; cli.Exit errors carry their own.
func exitCode(err error) int {
	if ec, ok := err.(cli.ExitCoder); ok {
		return ec.ExitCode()
	}
	return 1
}

func newApp() *cli.Command {
	return &cli.Command{
		Name:           "eventlistener",
		Usage:          "ingest events over HTTP and store them in batches in PostgreSQL and Elasticsearch",
		Version:        buildVersion(),
		DefaultCommand: "serve",
		Description: `Every flag can also be set with an environment variable: EVENTLISTENER_ and the
flag's name in upper snake case (--http-addr is EVENTLISTENER_HTTP_ADDR);
--database-url also reads DATABASE_URL, --elasticsearch-url ELASTICSEARCH_URL
and --redis-url REDIS_URL. "eventlistener serve --help" lists every setting.
With no store configured, events are written as NDJSON files under --data-dir.`,
		Commands: []*cli.Command{serveCommand(), replayCommand(), migrateCommand(), topCommand(), versionCommand()},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(_ context.Context, _ *cli.Command) error {
			fmt.Println("eventlistener", buildVersion())
			return nil
		},
	}
}

// newLogger builds the service's logger on stderr.
func newLogger(c *config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
