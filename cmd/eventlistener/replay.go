package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"eventlistener/sinks"
	"eventlistener/sinks/fallback"
)

func replayCommand() *cli.Command {
	c := defaultConfig()
	var only string
	var dryRun bool
	flags := append(storeFlags(&c),
		&cli.StringFlag{Name: "sink", Destination: &only,
			Usage: "replay only the records owed to this sink (postgres, elasticsearch or file); the others stay in the fallback log"},
		&cli.BoolFlag{Name: "dry-run", Destination: &dryRun,
			Usage: "print what would be sent; send and move nothing"},
		&cli.DurationFlag{Name: "retry-max-elapsed", Value: c.RetryMaxElapsed, Destination: &c.RetryMaxElapsed, Sources: env("retry-max-elapsed"),
			Usage: "how long a store is retried before a record is given up on (it stays in the fallback log)"},
	)
	return &cli.Command{
		Name:      "replay",
		Usage:     "send fallback files (or folders of them) again, each record only to the sink it names",
		ArgsUsage: "[PATH...]",
		Description: `With no PATH, replays the fallback dir. Each replayed file is moved into a
"replayed" folder beside it, so a second replay sends nothing twice; records
a store still refuses are written to a new fallback file beside it. Stores
suppress ids they already hold, so replaying an event twice stores it once.
Only one replay at a time works on a folder: a second one is refused.
Exit status: 0 when everything was sent, 1 when anything could not be
(a refused event, a sink not configured, a line that is not a record or
was cut short, a file that could not be read).`,
		Flags: flags,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := c.validateStores(); err != nil {
				return fmt.Errorf("invalid settings:\n%w", err)
			}
			switch only {
			case "", "postgres", "elasticsearch", "file":
			default:
				return fmt.Errorf("--sink must be postgres, elasticsearch or file, got %q", only)
			}
			paths := cmd.Args().Slice()
			if len(paths) == 0 {
				paths = []string{c.FallbackDir}
			}
			return replay(ctx, &c, paths, only, dryRun, os.Stdout)
		},
	}
}

func replay(ctx context.Context, c *config, paths []string, only string, dryRun bool, out io.Writer) error {
	log := newLogger(c)
	// On SIGINT or SIGTERM the file under way is finished (what was not sent
	// goes to its remainder file) and the rest are left for the next replay.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	files, err := fallback.Files(paths)
	if err != nil {
		return err
	}
	if !dryRun {
		unlock, err := fallback.LockDirs(files)
		if err != nil {
			return err
		}
		defer unlock()
		// List again under the lock: a replay that held it may have moved
		// files away meanwhile.
		if files, err = fallback.Files(paths); err != nil {
			return err
		}
	}
	stores, err := openStores(c, log, 4, false)
	if err != nil {
		return err
	}
	defer closeAll(stores)
	byName := map[string]sinks.Sink{}
	for _, s := range stores {
		byName[s.Name()] = s
	}
	r := &fallback.Replayer{
		Sinks: byName, Only: only, DryRun: dryRun,
		Retry: sinks.Retry{Initial: sinks.DefaultRetry.Initial, Max: sinks.DefaultRetry.Max, MaxElapsed: c.RetryMaxElapsed},
	}
	if dryRun {
		r.OnDryRun = func(path string, rec fallback.Record) {
			fmt.Fprintf(out, "would send to %s: %s %s (%s, failed %s: %s)\n", rec.Sink, rec.Event.ID, rec.Event.Type,
				path, rec.FailedAt.Format("2006-01-02T15:04:05Z07:00"), rec.Error)
		}
	}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !dryRun {
		bar := progressbar.NewOptions64(countLines(files), progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription("replaying"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"), progressbar.OptionClearOnFinish())
		r.OnRecords = func(n int) { _ = bar.Add(n) }
		defer bar.Finish()
	}

	var sum struct{ files, sent, failed, kept, noSink, bad, truncated, fileErrs int }
	noSinkNames := map[string]bool{}
	for _, path := range files {
		if ctx.Err() != nil {
			break
		}
		res, err := r.ReplayFile(ctx, path)
		sum.files++
		if err != nil {
			sum.fileErrs++
			log.Error("cannot replay file; it stays in place", "file", path, "error", err)
			continue
		}
		sum.sent += res.Sent
		sum.failed += res.Failed
		sum.kept += res.Kept
		sum.noSink += res.NoSink
		for _, b := range res.Bad {
			if b.Truncated {
				sum.truncated++
				log.Error("skipped a truncated last line (a write cut short); the file is kept", "file", path, "line", b.Line, "error", b.Err)
			} else {
				sum.bad++
				log.Error("skipped a line that is not a fallback record", "file", path, "line", b.Line, "error", b.Err)
			}
		}
		for _, name := range res.Missing {
			noSinkNames[name] = true
		}
		if res.Failed > 0 {
			log.Error("a store still refused events; they are kept in a new fallback file", "file", path,
				"events", res.Failed, "kept_in", res.Remainder, "error", res.FirstError)
		}
	}
	verb := "sent"
	if dryRun {
		verb = "would send"
	}
	fmt.Fprintf(out, "replay: %d files, %d events %s, %d failed, %d kept for other sinks, %d for sinks not configured, %d unreadable lines, %d truncated lines skipped\n",
		sum.files, sum.sent, verb, sum.failed, sum.kept, sum.noSink, sum.bad, sum.truncated)

	var errs []error
	if sum.noSink > 0 {
		names := make([]string, 0, len(noSinkNames))
		for n := range noSinkNames {
			names = append(names, n)
		}
		sort.Strings(names)
		errs = append(errs, fmt.Errorf("%d events are owed to sinks that are not configured (%v): set their URLs; they stay in the fallback log", sum.noSink, names))
	}
	if sum.failed > 0 {
		errs = append(errs, fmt.Errorf("%d events could not be sent; they stay in the fallback log", sum.failed))
	}
	if sum.bad > 0 {
		errs = append(errs, fmt.Errorf("%d lines are not fallback records, or hold events the input contract refuses, e.g. \\u0000 or a key twice in data, which an older version let through (see the log for each line and why; the files are kept under %s)", sum.bad, fallback.ReplayedDir))
	}
	if sum.truncated > 0 {
		errs = append(errs, fmt.Errorf("%d last lines were cut short, so not sent (see the log; the files are kept under %s). "+
			"If the engine was killed while writing them, it sends their events again from its write-ahead log", sum.truncated, fallback.ReplayedDir))
	}
	if sum.fileErrs > 0 {
		errs = append(errs, fmt.Errorf("%d files could not be replayed", sum.fileErrs))
	}
	if ctx.Err() != nil {
		errs = append(errs, errors.New("interrupted"))
	}
	return errors.Join(errs...)
}

// countLines counts the records in files, for the progress bar's total.
func countLines(files []string) int64 {
	var n int64
	for _, p := range files {
		c, _ := fallback.CountLines(p)
		n += c
	}
	return n
}
