// Command ferretdb runs FerretDB v1 (pinned in go.mod) with its SQLite backend: the
// MongoDB-compatible server dueflow's tests and demo use when MONGODB_URI is not set. The
// benchmark also runs it over PostgreSQL (-handler postgresql -postgresql-url ...).
//
// It uses FerretDB's embeddable package rather than building cmd/ferretdb, because that
// command refuses to start unless built from FerretDB's own checkout (build/version/version.txt).
// The embeddable server never starts telemetry or a debug listener.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", "sqlite or postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite URI (a directory, ending with /)")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL (handler postgresql)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: bad -log-level %q: %v\n", *logLevel, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listenAddr},
		Logger:        logger,
		Handler:       *handler,
		SQLiteURL:     *sqliteURL,
		PostgreSQLURL: *postgresqlURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	fmt.Printf("ferretdb listening on %s\n", *listenAddr)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}
