package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/theus-go/theus/runtime/console"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

const usage = `usage: theus COMMAND [flags] STORE [args]

commands:
  status   outbox depth, oldest undelivered age and parked keys, per topic
  parked   the parked keys with their error, attempts and first message
  replay   STORE TOPIC KEY: return a parked key to delivery
  skip     STORE ID: mark a parked message delivered without sending it
  history  commits, newest first (-process, -topic, -key, -from, -to, -limit, -values)
  watch    print commits as they are made (-from, -limit)
  serve    the web console (-addr, -read-only, -token-file)

STORE is sqlite:PATH or a postgres:// DSN (password from PGPASSWORD or -password-file).
Run 'theus COMMAND -h' for a command's flags.
`

// usageError is a wrong command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// store is what the commands read.
type store interface {
	outbox.Store
	outbox.Parking
	outbox.Inspector
	outbox.StatsReader
	engine.HistoryReader
	console.HeadReader
	Close() error
}

type cmd struct {
	ctx    context.Context
	out    io.Writer
	errw   io.Writer
	fs     *flag.FlagSet
	format *string
	pwFile *string
	schema *string
	args   []string // STORE and the command's arguments
	rest   []string // the command line after the command's name
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	c := &cmd{ctx: ctx, out: stdout, errw: stderr, fs: flag.NewFlagSet("theus "+name, flag.ContinueOnError), rest: args[1:]}
	c.fs.SetOutput(stderr)
	c.format = c.fs.String("format", "text", "output `format`: text or json")
	c.pwFile = c.fs.String("password-file", "", "read the PostgreSQL password from `file` (else PGPASSWORD)")
	c.schema = c.fs.String("schema", "", "PostgreSQL `schema` of the store (default the store's default)")
	cmds := map[string]func(*cmd) error{
		"status": status, "parked": parked, "replay": replay, "skip": skip,
		"history": history, "watch": watch, "serve": serve,
	}
	f, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "theus: unknown command %q\n%s", name, usage)
		return 2
	}
	err := f(c)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "theus %s: %s\n", name, ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "theus %s: %v\n", name, err)
		return 1
	}
}

// parse parses the flags and checks the number of arguments after STORE.
func (c *cmd) parse(args []string, extra int, names string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if *c.format != "text" && *c.format != "json" {
		return usageError{fmt.Sprintf("-format %q: want text or json", *c.format)}
	}
	if c.fs.NArg() != 1+extra {
		return usageError{"want STORE" + names + " (sqlite:PATH or a postgres:// DSN)"}
	}
	c.args = c.fs.Args()
	return nil
}

// open opens the store named by the first argument. Its errors never hold
// a PostgreSQL DSN.
func (c *cmd) open() (store, error) {
	spec := c.args[0]
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no store at %s: %w", path, errors.Unwrap(err))
		}
		st, err := sqlite.Open(c.ctx, path)
		if err != nil {
			return nil, err
		}
		return st, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		if *c.pwFile != "" {
			b, err := os.ReadFile(*c.pwFile)
			if err != nil {
				return nil, fmt.Errorf("password file: %w", err)
			}
			// pgx reads PGPASSWORD when the DSN has no password.
			os.Setenv("PGPASSWORD", strings.TrimRight(string(b), "\r\n"))
		}
		var opts []postgres.Option
		if *c.schema != "" {
			opts = append(opts, postgres.WithSchema(*c.schema))
		}
		st, err := postgres.Open(c.ctx, spec, opts...)
		if err != nil {
			return nil, err // the store takes the password out of its errors
		}
		return st, nil
	}
	return nil, usageError{"STORE must be sqlite:PATH or a postgres:// DSN"}
}

func (c *cmd) json(v any) error {
	e := json.NewEncoder(c.out)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Millisecond).String()
}

// payload is a stored payload for JSON output: as is when it is JSON.
func payload(b []byte) any {
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	return string(b)
}

func status(c *cmd) error {
	if err := c.parse(c.rest, 0, ""); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	head, err := st.Head(c.ctx)
	if err != nil {
		return err
	}
	stats, err := st.Stats(c.ctx)
	if err != nil {
		return err
	}
	topics, err := st.TopicStats(c.ctx)
	if err != nil {
		return err
	}
	if *c.format == "json" {
		type topic struct {
			Topic         string     `json:"topic"`
			Pending       int        `json:"pending"`
			OldestPending *time.Time `json:"oldest_pending,omitempty"`
			Parked        int        `json:"parked"`
			ParkedKeys    int        `json:"parked_keys"`
		}
		out := struct {
			Head          uint64     `json:"head"`
			Pending       int        `json:"pending"`
			OldestPending *time.Time `json:"oldest_pending,omitempty"`
			Parked        int        `json:"parked"`
			ParkedKeys    int        `json:"parked_keys"`
			Topics        []topic    `json:"topics"`
		}{Head: head, Pending: stats.Pending, OldestPending: timePtr(stats.OldestPending), Parked: stats.Parked, ParkedKeys: stats.ParkedKeys, Topics: []topic{}}
		for _, t := range topics {
			out.Topics = append(out.Topics, topic{t.Topic, t.Pending, timePtr(t.OldestPending), t.Parked, t.ParkedKeys})
		}
		return c.json(out)
	}
	fmt.Fprintf(c.out, "head version:        %d\npending messages:    %d\noldest undelivered:  %s (age %s)\nparked messages:     %d\nparked keys:         %d\n",
		head, stats.Pending, ts(stats.OldestPending), age(stats.OldestPending), stats.Parked, stats.ParkedKeys)
	if len(topics) > 0 {
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nTOPIC\tPENDING\tOLDEST AGE\tPARKED\tPARKED KEYS")
		for _, t := range topics {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\n", t.Topic, t.Pending, age(t.OldestPending), t.Parked, t.ParkedKeys)
		}
		tw.Flush()
	}
	return nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func parked(c *cmd) error {
	if err := c.parse(c.rest, 0, ""); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	ks, err := console.ParkedKeys(c.ctx, st)
	if err != nil {
		return err
	}
	if *c.format == "json" {
		type key struct {
			Topic     string    `json:"topic"`
			Key       string    `json:"key"`
			Parked    int       `json:"parked"`
			ID        string    `json:"id"`
			KeySeq    uint64    `json:"key_seq"`
			Version   uint64    `json:"version"`
			Attempts  int       `json:"attempts"`
			LastError string    `json:"last_error"`
			CreatedAt time.Time `json:"created_at"`
			Payload   any       `json:"payload"`
		}
		out := []key{}
		for _, k := range ks {
			m := k.First
			out = append(out, key{k.Topic, k.Key, k.Count, m.ID, m.KeySeq, m.Version, m.Attempts, m.LastError, m.CreatedAt.UTC(), payload(m.Payload)})
		}
		return c.json(out)
	}
	if len(ks) == 0 {
		fmt.Fprintln(c.out, "no parked keys")
		return nil
	}
	for _, k := range ks {
		m := k.First
		fmt.Fprintf(c.out, "%s %q: %d parked, first %s (seq %d, commit %d, %d attempts)\n  error: %s\n  payload: %s\n",
			k.Topic, k.Key, k.Count, m.ID, m.KeySeq, m.Version, m.Attempts, m.LastError, m.Payload)
	}
	return nil
}

func replay(c *cmd) error {
	if err := c.parse(c.rest, 2, " TOPIC KEY"); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.Replay(c.ctx, c.args[1], c.args[2])
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no parked message for topic %q key %q", c.args[1], c.args[2])
	}
	if *c.format == "json" {
		return c.json(map[string]any{"topic": c.args[1], "key": c.args[2], "replayed": n})
	}
	fmt.Fprintf(c.out, "replayed %d message(s) of %s %q\n", n, c.args[1], c.args[2])
	return nil
}

func skip(c *cmd) error {
	if err := c.parse(c.rest, 1, " ID"); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Skip(c.ctx, c.args[1]); err != nil {
		return err
	}
	if *c.format == "json" {
		return c.json(map[string]any{"skipped": c.args[1]})
	}
	fmt.Fprintf(c.out, "skipped %s\n", c.args[1])
	return nil
}

// commitJSON is a commit in JSON output.
type commitJSON struct {
	Version  uint64        `json:"version"`
	Process  string        `json:"process"`
	Time     time.Time     `json:"time"`
	Writes   []string      `json:"writes"`
	Messages []messageJSON `json:"messages"`
	Values   []valueJSON   `json:"values,omitempty"`
}

// valueJSON is a value a commit wrote, as stored: Data is the stored
// JSON, null for a deleted entry.
type valueJSON struct {
	Path string `json:"path"`
	Key  string `json:"key,omitempty"`
	Data any    `json:"data"`
}

type messageJSON struct {
	ID     string `json:"id"`
	Topic  string `json:"topic,omitempty"`
	Key    string `json:"key,omitempty"`
	KeySeq uint64 `json:"key_seq,omitempty"`
	State  string `json:"state"`
}

func newCommitJSON(c engine.Commit, ms []outbox.MessageStatus) commitJSON {
	out := commitJSON{Version: c.Version, Process: c.Process, Time: c.Time.UTC(), Writes: []string{}, Messages: []messageJSON{}}
	for _, w := range c.Writes {
		out.Writes = append(out.Writes, console.WriteString(w))
	}
	byID := map[string]outbox.MessageStatus{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	for _, id := range c.MessageIDs {
		m, ok := byID[id]
		if !ok {
			out.Messages = append(out.Messages, messageJSON{ID: id, State: "pruned"})
			continue
		}
		out.Messages = append(out.Messages, messageJSON{id, m.Topic, m.Key, m.KeySeq, m.State})
	}
	return out
}

func withValues(j commitJSON, vs []engine.Value) commitJSON {
	for _, v := range vs {
		var data any
		if v.Data != nil {
			data = payload(v.Data)
		}
		j.Values = append(j.Values, valueJSON{v.Path, v.Key, data})
	}
	return j
}

func (c *cmd) printCommit(j commitJSON) error {
	if *c.format == "json" {
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.out, "%s\n", b)
		return err
	}
	process := j.Process
	if process == "" {
		process = "(CompareAndSwap)"
	}
	fmt.Fprintf(c.out, "%d\t%s\t%s\t%s", j.Version, ts(j.Time), process, strings.Join(j.Writes, ", "))
	for _, m := range j.Messages {
		if m.Topic != "" {
			fmt.Fprintf(c.out, "\t%s %q #%d %s", m.Topic, m.Key, m.KeySeq, m.State)
		} else {
			fmt.Fprintf(c.out, "\t%s %s", m.ID, m.State)
		}
	}
	_, err := fmt.Fprintln(c.out)
	for _, v := range j.Values {
		at := v.Path
		if v.Key != "" {
			at += "[" + strconv.Quote(v.Key) + "]"
		}
		b, _ := json.Marshal(v.Data)
		if v.Data == nil {
			b = []byte("(deleted)")
		}
		fmt.Fprintf(c.out, "\t%s = %s\n", at, b)
	}
	return err
}

func history(c *cmd) error {
	var f console.HistoryFilter
	c.fs.StringVar(&f.Process, "process", "", "only the commits of `process`")
	c.fs.StringVar(&f.Topic, "topic", "", "only the commits that emitted to `topic`")
	c.fs.StringVar(&f.Key, "key", "", "only the commits that emitted a message with `key`")
	c.fs.Uint64Var(&f.From, "from", 0, "from `version` (included)")
	c.fs.Uint64Var(&f.To, "to", 0, "up to `version` (included)")
	limit := c.fs.Int("limit", 50, "at most `n` commits")
	values := c.fs.Bool("values", false, "print the values each commit wrote, as stored")
	if err := c.parse(c.rest, 0, ""); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	var rows []console.Row
	before := uint64(0)
	for len(rows) < *limit {
		page, next, err := console.History(c.ctx, st, f, before, *limit-len(rows))
		if err != nil {
			return err
		}
		rows = append(rows, page...)
		if next == 0 {
			break
		}
		before = next
	}
	out := []commitJSON{}
	for _, r := range rows {
		j := newCommitJSON(r.Commit, r.Messages)
		if *values {
			j = withValues(j, r.Values)
		}
		out = append(out, j)
	}
	if *c.format == "json" {
		return c.json(out)
	}
	for _, j := range out {
		if err := c.printCommit(j); err != nil {
			return err
		}
	}
	return nil
}

func watch(c *cmd) error {
	from := c.fs.String("from", "", "print the commits after `version` (default the head: only new ones)")
	limit := c.fs.Int("limit", 0, "stop after `n` commits (0: until interrupted)")
	poll := c.fs.Duration("poll", 500*time.Millisecond, "how often to read the store")
	if err := c.parse(c.rest, 0, ""); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	var v uint64
	if *from != "" {
		if v, err = strconv.ParseUint(*from, 10, 64); err != nil {
			return usageError{fmt.Sprintf("-from %q: not a version", *from)}
		}
	} else if v, err = st.Head(c.ctx); err != nil {
		return err
	}
	n := 0
	for cm, err := range console.Follow(c.ctx, st, nil, *poll, v) {
		if err != nil {
			return err
		}
		ms, err := st.Messages(c.ctx, cm.MessageIDs)
		if err != nil {
			return err
		}
		if err := c.printCommit(newCommitJSON(cm, ms)); err != nil {
			return err
		}
		if n++; *limit > 0 && n >= *limit {
			return nil
		}
	}
	return nil
}

func serve(c *cmd) error {
	addr := c.fs.String("addr", "127.0.0.1:8080", "listen on `address`")
	readOnly := c.fs.Bool("read-only", false, "refuse Replay and Skip")
	tokenFile := c.fs.String("token-file", "", "read the action token from `file` (else THEUS_CONSOLE_TOKEN)")
	if err := c.parse(c.rest, 0, ""); err != nil {
		return err
	}
	token := os.Getenv("THEUS_CONSOLE_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return usageError{fmt.Sprintf("-addr %q: %v", *addr, err)}
	}
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	if !loopback && !*readOnly && token == "" {
		return usageError{fmt.Sprintf("-addr %s is not a loopback address: set an action token (THEUS_CONSOLE_TOKEN or -token-file), or -read-only", *addr)}
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	opts := []console.Option{}
	if *readOnly {
		opts = append(opts, console.ReadOnly())
	}
	if token != "" {
		opts = append(opts, console.WithActionToken(token))
	}
	h, err := console.New(st, opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(c.out, "theus console on http://%s/\n", ln.Addr())
	go func() {
		<-c.ctx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
