// Command eventhub serves job status events to browser dashboards over
// Server-Sent Events.
//
//	eventhub serve [flags]
//	eventhub schema
//
// schema prints the JSON Schema (draft 2020-12) of a JobEvent as the hub
// sends it, which clients in other languages build their types from.
//
// Every flag can also be set with an environment variable EVENTHUB_<NAME>
// (--publish-key from EVENTHUB_PUBLISH_KEY); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/finexbot/eventhub/jobs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventhub:", err)
		os.Exit(1)
	}
}

const usage = `usage: eventhub serve [flags]
       eventhub schema

serve serves job status events over Server-Sent Events. Run "eventhub serve -h"
for the flags; each also reads EVENTHUB_<NAME>, e.g. EVENTHUB_PUBLISH_KEY.

schema prints the JSON Schema of a JobEvent as the hub sends it.
`

// run is the whole program, with its outside world passed in so a test can
// drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "schema" {
		if len(args) > 1 {
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("schema takes no arguments, not %q", args[1:])
		}
		_, err := stdout.Write(jobs.Schema())
		return err
	}
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprint(stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return flag.ErrHelp
		}
		return errors.New("unknown command: want serve or schema")
	}
	cfg, err := parseServeFlags(args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	return serve(ctx, cfg, logger, stderr)
}

// envName is the environment variable that sets a flag.
func envName(flagName string) string {
	return "EVENTHUB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
