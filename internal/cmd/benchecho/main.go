// Command benchecho is the benchmark's reference: the practical HTTP limit of
// POST /v1/events on this machine. It is an echo server whose handler only
// decodes the body with api.Decode and answers 202 with the ids, as the real
// server does, without a WAL, a buffer or any store. scripts/bench-e2e builds
// it and drives it with the same load as the engine.
package main

import (
	"errors"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"eventlistener/api"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to listen on")
	flag.Parse()

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/v1/events", func(c echo.Context) error {
		req := c.Request()
		events, err := api.Decode(req.Header, req.Body, api.DecodeOptions{
			MaxBytes: 16 << 20, Now: time.Now().UTC(), DefaultSource: "http",
		})
		if err != nil {
			status := http.StatusBadRequest
			var re *api.RequestError
			if errors.As(err, &re) {
				status = re.Status
			}
			return c.JSON(status, map[string]string{"error": err.Error()})
		}
		ids := make([]string, len(events))
		for i := range events {
			ids[i] = events[i].ID
		}
		return c.JSON(http.StatusAccepted, struct {
			Accepted int      `json:"accepted"`
			IDs      []string `json:"ids"`
		}{len(events), ids})
	})
	log.Fatal(e.Start(*addr))
}
