package crashfs_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"eventlistener/internal/crashfs"
)

// A crash keeps everything synced, whatever part of the later write it
// tears off (none of it included).
func TestCrashKeepsWhatWasSynced(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	synced := bytes.Repeat([]byte("s"), 100)
	for i := range 2000 {
		fs := crashfs.New()
		fs.MkdirAll("/d")
		f, _ := fs.Create("/d/f")
		f.WriteAt(synced, 0)
		f.Sync()
		fs.SyncDir("/d")
		f.WriteAt(bytes.Repeat([]byte("u"), 1+i%50), 100)
		fs.Crash(rng)
		got, ok := fs.Bytes("/d/f")
		if !ok || len(got) < len(synced) || !bytes.Equal(got[:100], synced) {
			t.Fatalf("crash %d: file is %q, want it to start with the 100 synced bytes", i, got)
		}
	}
}
