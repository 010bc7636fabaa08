package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
)

const chromium = "/usr/bin/chromium"

// In a real browser: the overview of a store with a parked key, a click on
// Replay, the confirmation, and the key delivered by the relay. Each
// page's screenshot goes to the test's artifact directory (go test
// -artifacts), and to $THEUS_SCREENSHOTS when set (docs/ takes them from
// there).
func TestBrowserReplay(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("THEUS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("THEUS_REQUIRE_SERVICES=1 but there is no browser at %s: %v", chromium, err)
		}
		t.Skipf("SKIPPING: no headless browser at %s (apt-get install chromium): %v", chromium, err)
	}
	f := newFixture(t, openSQLite(t))

	// The relay: its sink now takes everything.
	var mu sync.Mutex
	delivered := map[string]bool{}
	relay := outbox.NewRelay(f.st, sink.Func(func(_ context.Context, m outbox.Message) error {
		mu.Lock()
		delivered[m.ID] = true
		mu.Unlock()
		return nil
	}), outbox.WithPollInterval(20*time.Millisecond))
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	defer func() {
		stop()
		<-done
	}()

	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 800))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first Run starts the browser, which lives as long as its context.
	if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	shots := []string{t.ArtifactDir()}
	if d := os.Getenv("THEUS_SCREENSHOTS"); d != "" {
		shots = append(shots, d)
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			for _, d := range shots {
				if err := os.WriteFile(filepath.Join(d, "console-"+name+".png"), png, 0o644); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#topics")),
		shot("overview"),
		chromedp.Click(chromedp.CSS(`header a[href="/parked"]`)),
		chromedp.WaitVisible(chromedp.CSS("#parked")),
		shot("parked"),
		chromedp.Click(chromedp.ID("replay-"+f.parked.ID)),
		chromedp.WaitVisible(chromedp.ID("confirm")),
		shot("replay-confirm"),
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	if err != nil {
		t.Fatal(err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("flash")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flash, "Replayed 1 message(s)") {
		t.Fatalf("flash after Replay: %q", flash)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ok := delivered[f.parked.ID]
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replayed message %s was not delivered", f.parked.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The commit page shows it delivered, once the relay's acks are in.
	var state string
	deadline = time.Now().Add(10 * time.Second)
	for {
		if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/commits/"+itoa(f.parked.Version))); err != nil {
			t.Fatal(err)
		}
		if state, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#messages .state"))); err != nil {
			t.Fatal(err)
		}
		if state == outbox.StateDelivered || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if state != outbox.StateDelivered {
		t.Fatalf("commit page shows the replayed message %q, want delivered", state)
	}
	err = chromedp.Do(ctx, shot("commit"),
		chromedp.Navigate(f.srv.URL+"/history"), chromedp.WaitVisible(chromedp.ID("commits")), shot("history"),
		chromedp.Navigate(f.srv.URL+"/tail"), chromedp.WaitVisible(chromedp.ID("commits")))
	if err != nil {
		t.Fatal(err)
	}
	// The live tail shows a commit made after the page loaded.
	if _, err := f.eng.Deposit(context.Background(), depositArgs()); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#commits a[href="/commits/6"]`)), shot("tail")); err != nil {
		t.Fatal(err)
	}
}
