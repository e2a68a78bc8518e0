package fallback

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockName is the lock file a replay holds in each folder it replays from.
const LockName = ".replay.lock"

// ErrLocked says another replay holds a folder.
var ErrLocked = errors.New("another replay is running")

// LockDirs takes the replay lock of the folders holding files, so two
// replays never send the same file at once. It does not wait: a folder
// another replay holds fails with ErrLocked, naming the folder and the
// holder's pid. The locks go with the process if it dies.
func LockDirs(files []string) (unlock func(), err error) {
	dirs := map[string]bool{}
	for _, f := range files {
		dirs[filepath.Dir(f)] = true
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted) // one order for every replay
	var held []*os.File
	unlock = func() {
		for _, f := range held {
			_ = f.Truncate(0)
			f.Close() // closing drops the lock
		}
	}
	for _, d := range sorted {
		f, err := os.OpenFile(filepath.Join(d, LockName), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("cannot lock %s for the replay: %w", d, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			holder := make([]byte, 32)
			n, _ := f.ReadAt(holder, 0)
			f.Close()
			unlock()
			if errors.Is(err, unix.EWOULDBLOCK) {
				who := ""
				if pid := strings.TrimSpace(string(holder[:n])); pid != "" {
					who = " (pid " + pid + ")"
				}
				return nil, fmt.Errorf("%w on %s%s: wait for it to finish, then replay again", ErrLocked, d, who)
			}
			return nil, fmt.Errorf("cannot lock %s for the replay: %w", d, err)
		}
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		held = append(held, f)
	}
	return unlock, nil
}
