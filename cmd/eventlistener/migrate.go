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
		Flags: storeFlags(&c),
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
