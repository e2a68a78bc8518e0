package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"eventlistener/console/top"
)

func topCommand() *cli.Command {
	var adminURL, token string
	return &cli.Command{
		Name:  "top",
		Usage: "show an engine's live numbers in the terminal: ingest, buffer, sinks, Redis, HAProxy (q quits)",
		Description: `Reads the stats stream of an engine's admin listener (GET /v1/stats/stream),
the same numbers as the console in a browser. With the admin token it also
shows errors and paths. It opens the stream again when it breaks.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "admin-url", Value: "http://127.0.0.1:8081", Destination: &adminURL, Sources: env("admin-url"),
				Usage: "the engine's admin listener (its --admin-addr)"},
			&cli.StringFlag{Name: "admin-token", Destination: &token, Sources: env("admin-token"),
				Usage: "the engine's --admin-token, to see errors and paths"},
		},
		Action: func(ctx context.Context, _ *cli.Command) error {
			u, err := url.Parse(adminURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("--admin-url must be an http:// or https:// URL such as http://127.0.0.1:8081, got %q", adminURL)
			}
			if !term.IsTerminal(int(os.Stdout.Fd())) {
				return errors.New("top draws on a terminal, and stdout is not one; for numbers to read by a program, use GET /v1/stats")
			}
			return runTop(ctx, adminURL, token)
		},
	}
}

func runTop(ctx context.Context, adminURL, token string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}}
	p := tea.NewProgram(top.New(adminURL), tea.WithAltScreen(), tea.WithContext(ctx))
	go top.Stream(ctx, client, adminURL, token, p.Send)
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
