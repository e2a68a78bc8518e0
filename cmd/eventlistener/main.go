package main

import (
	_ "github.com/asynkron/protoactor-go/actor"
	_ "github.com/cenkalti/backoff/v5"
	_ "github.com/elastic/go-elasticsearch/v8"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/labstack/echo/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/urfave/cli/v3"
	_ "golang.org/x/term"
)

func main() {}
