package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// plainBinary builds eventlistener without the race detector, whose
// shadow memory would make the figures meaningless; once per run.
var plainBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "eventlistener-plain-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "eventlistener")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// peakRSS is the process's high-water mark of resident memory (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// memoryBound is the README's bound on RSS under this load, with the
// defaults.
const memoryBound = 512 << 20

// Eight clients post two 16 MiB NDJSON bodies of tiny events each, while a
// slow client trickles a body in: the engine's resident memory stays under
// the README's bound, and a small client is still served throughout.
func TestMemoryIsBoundedUnderLargeRequests(t *testing.T) {
	bin, err := plainBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	p := startBinary(t, bin, t.TempDir(), "--log-level", "info")

	var big bytes.Buffer
	for big.Len() < 16<<20-len(`{"type":"a"}`+"\n") {
		big.WriteString(`{"type":"a"}` + "\n")
	}
	body := big.Bytes()

	// The slow client: headers, then a byte now and then.
	slow, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n", len(body))
	stopSlow := make(chan struct{})
	var slowDone sync.WaitGroup
	slowDone.Add(1)
	go func() {
		defer slowDone.Done()
		for i := 0; ; i++ {
			select {
			case <-stopSlow:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := slow.Write(body[i*64 : (i+1)*64]); err != nil {
				return
			}
		}
	}()

	// The small client.
	var smallOK, smallBusy, smallOther atomic.Int64
	stopSmall := make(chan struct{})
	var smallDone sync.WaitGroup
	smallDone.Add(1)
	go func() {
		defer smallDone.Done()
		for {
			select {
			case <-stopSmall:
				return
			case <-time.After(10 * time.Millisecond):
			}
			res, err := http.Post(p.url+"/v1/events", "application/json", strings.NewReader(`{"type":"small"}`))
			if err != nil {
				smallOther.Add(1)
				continue
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			switch res.StatusCode {
			case http.StatusAccepted:
				smallOK.Add(1)
			case http.StatusServiceUnavailable:
				smallBusy.Add(1)
			default:
				smallOther.Add(1)
			}
		}
	}()

	// The large clients.
	statuses := make(chan int, 16)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 2 * time.Minute}
			for range 2 {
				res, err := client.Post(p.url+"/v1/events", "application/x-ndjson", bytes.NewReader(body))
				if err != nil {
					t.Errorf("large request: %v", err)
					statuses <- 0
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				statuses <- res.StatusCode
			}
		}()
	}
	wg.Wait()
	close(statuses)
	time.Sleep(200 * time.Millisecond) // the small client goes on a little
	close(stopSmall)
	smallDone.Wait()
	close(stopSlow)
	slowDone.Wait()
	slow.Close()

	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	for s := range counts {
		if s != http.StatusRequestEntityTooLarge && s != http.StatusServiceUnavailable {
			t.Errorf("large requests answered %v, want only 413 (too many events) and 503 (budget spent)", counts)
		}
	}
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS %.0f MiB; large requests %v; small client: %d accepted, %d busy, %d other",
		float64(rss)/(1<<20), counts, smallOK.Load(), smallBusy.Load(), smallOther.Load())
	if rss > memoryBound {
		t.Errorf("peak RSS %d MiB, over the README's bound of %d MiB", rss>>20, memoryBound>>20)
	}
	total := smallOK.Load() + smallBusy.Load() + smallOther.Load()
	if smallOther.Load() > 0 || total == 0 || smallOK.Load()*10 < total*9 {
		t.Errorf("the small client was not served: %d accepted of %d (%d busy, %d failed)", smallOK.Load(), total, smallBusy.Load(), smallOther.Load())
	}
	p.stop(t)
}
