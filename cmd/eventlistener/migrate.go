package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"
)

func migrateCommand() *cli.Command {
	c := defaultConfig()
	return &cli.Command{
		Name:  "migrate",
		Usage: "create the PostgreSQL table and the Elasticsearch index template (serve does this at start)",
		Description: `Creates what is missing and leaves what exists alone: an index template an
operator changed (an ILM policy, shards, replicas) is kept. With --force the
index template is replaced by this version's (the new template applies from
the data stream's next backing index: roll it over to use it now).`,
		Flags: append(storeFlags(&c), &cli.BoolFlag{Name: "force", Destination: &c.ReplaceTemplate,
			Usage: "replace the Elasticsearch index template if it exists (an operator's changes to it are lost)"}),
		Action: func(ctx context.Context, _ *cli.Command) error {
			if err := c.validateStores(); err != nil {
				return fmt.Errorf("invalid settings:\n%w", err)
			}
			log := newLogger(&c)
			stores, err := openStores(&c, log, 2, true)
			if err != nil {
				return err
			}
			defer closeAll(stores)
			if len(stores) == 0 {
				return errors.New("no store configured: set --database-url and/or --elasticsearch-url")
			}
			return migrate(ctx, stores, log, 10*time.Second)
		},
	}
}
