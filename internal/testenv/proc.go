package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// workPrefix names the per-process folders this package makes in the
// temporary directory.
const workPrefix = "eventlistener-testenv-"

// account is a system user that a server runs as when the tests run as root.
type account struct {
	name     string
	uid, gid int
}

// runAsAccount returns the account to run a root-refusing server as: nil when
// the tests do not run as root (the server runs as the current user), else the
// system user username. ok is false when that user does not exist.
func runAsAccount(username string) (acct *account, ok bool, err error) {
	if os.Geteuid() != 0 {
		return nil, true, nil
	}
	u, err := user.Lookup(username)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, false, nil
		}
		return nil, false, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, false, fmt.Errorf("user %s: uid %q: %w", username, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, false, fmt.Errorf("user %s: gid %q: %w", username, u.Gid, err)
	}
	return &account{name: username, uid: uid, gid: gid}, true, nil
}

// chown gives path to acct; it does nothing when acct is nil.
func (acct *account) chown(path string) error {
	if acct == nil {
		return nil
	}
	return os.Lchown(path, acct.uid, acct.gid)
}

// mkdirOwned makes the folder path with mode perm, owned by acct (or by the
// current user when acct is nil).
func mkdirOwned(path string, perm fs.FileMode, acct *account) error {
	if err := os.Mkdir(path, perm); err != nil {
		return err
	}
	if err := os.Chmod(path, perm); err != nil { // undo the umask
		return err
	}
	return acct.chown(path)
}

// command prepares name with args to run as acct (as the current user when
// acct is nil), in folder dir, with a plain C locale and UTC, without the
// caller's PG* variables. Its process is in a process group of its own and
// gets SIGQUIT when the test binary dies.
func command(acct *account, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	env := []string{"LC_ALL=C", "LANG=C", "TZ=UTC"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "TZ" {
			continue
		}
		if acct != nil && (k == "HOME" || k == "USER" || k == "LOGNAME") {
			continue
		}
		env = append(env, kv)
	}
	if acct != nil {
		env = append(env, "USER="+acct.name, "LOGNAME="+acct.name, "HOME="+dir)
	}
	cmd.Env = env
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if acct != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(acct.uid), Gid: uint32(acct.gid), Groups: []uint32{}}
	}
	cmd.SysProcAttr = attr
	return cmd
}

// The parent-death signal is sent when the thread that started the child
// ends, not the process; Go may end a thread while the process goes on. So
// every child is started from one goroutine locked to its thread for good:
// that thread lives as long as the test binary.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// startCmd starts cmd from the spawner's thread (see above).
func startCmd(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive its children
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// runCmd runs cmd to its end, started like startCmd.
func runCmd(cmd *exec.Cmd) error {
	if err := startCmd(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// The work folder holds everything this test binary makes: templates and
// servers' folders. It lives as long as the binary and holds a lock file that
// the binary keeps locked; a folder whose lock is free belonged to a binary
// that has ended without cleaning up, and is removed.
var work struct {
	once sync.Once
	dir  string
	lock *os.File
	err  error
}

// workDir returns this test binary's work folder, making it on first use.
func workDir() (string, error) {
	work.once.Do(func() {
		work.dir, work.lock, work.err = makeWorkDir()
	})
	return work.dir, work.err
}

func makeWorkDir() (string, *os.File, error) {
	base := tempBase()
	sweep(base)
	dir, err := os.MkdirTemp(base, workPrefix)
	if err != nil {
		return "", nil, err
	}
	// Others may enter but not list it: servers run as a system user must
	// reach their own folders inside.
	if err := os.Chmod(dir, 0o711); err != nil {
		return "", nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return "", nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	fmt.Fprintf(lock, "%d\n", os.Getpid())
	return dir, lock, nil
}

// tempBase returns the folder to make the work folder in: the temporary
// directory, or /tmp when running as root and some folder above the
// temporary directory is closed to other users.
func tempBase() string {
	base := os.TempDir()
	if os.Geteuid() != 0 {
		return base
	}
	for d := base; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return base
		}
	}
}

// sweep removes work folders in base that test binaries which have ended
// left behind.
func sweep(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, workPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
			continue
		}
		if !abandoned(dir, fi.ModTime()) {
			continue
		}
		if livePostmaster(dir) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// abandoned reports whether the test binary that made the work folder dir
// has ended.
func abandoned(dir string, made time.Time) bool {
	f, err := os.Open(filepath.Join(dir, "lock"))
	if err != nil {
		// Not locked yet, or never: give its maker time to lock it.
		return errors.Is(err, fs.ErrNotExist) && time.Since(made) > time.Minute
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}

// livePostmaster reports whether a PostgreSQL server still runs in a data
// folder under dir. Such a folder is left alone.
func livePostmaster(dir string) bool {
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*", "*", "postmaster.pid"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "postmaster.pid"))
	for _, pf := range append(pidFiles, more...) {
		b, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(b), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			return true
		}
	}
	return false
}

// processAlive reports whether a process with that id exists (a zombie
// counts).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// copyTree copies the folder src to dst (which must not exist), keeping
// modes, with everything owned by acct (by the current user when acct is
// nil).
func copyTree(src, dst string, acct *account) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return mkdirOwned(target, info.Mode().Perm(), acct)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			return acct.chown(target)
		case d.Type().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				return err
			}
			return acct.chown(target)
		default:
			return nil // sockets and the like are not copied
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// process is a server process the harness started.
type process struct {
	pid     int
	exited  chan struct{} // closed when the process has ended and been reaped
	waitErr error         // set before exited is closed
	signal  func(os.Signal) error
}

// running says whether p is a process that has not ended; p may be nil.
func (p *process) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// id is p's process id, or 0 when p is nil.
func (p *process) id() int {
	if p == nil {
		return 0
	}
	return p.pid
}

// readLog returns the log file at path, or a note saying why there is none.
func readLog(path, what string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no %s: %v)", what, err)
	}
	return string(b)
}

// signalStep is one step of ending a process: a signal, and how long to
// wait for the process to end after it.
type signalStep struct {
	sig  os.Signal
	wait time.Duration
}

// terminate sends the steps' signals in turn until the process has ended.
// An end that needed more than the first signal is reported as an error
// naming the signal that worked, so a server that ignores a clean stop is
// noticed; name names the program in messages.
func (p *process) terminate(name string, steps ...signalStep) error {
	for _, s := range steps {
		select {
		case <-p.exited:
			return nil
		default:
		}
		_ = p.signal(s.sig) // fails only when it has already ended
		select {
		case <-p.exited:
			if s.sig != steps[0].sig {
				return fmt.Errorf("%s (pid %d) ignored %v; sent %v", name, p.pid, steps[0].sig, s.sig)
			}
			return nil
		case <-time.After(s.wait):
		}
	}
	return fmt.Errorf("%s (pid %d) did not end, even on %v", name, p.pid, steps[len(steps)-1].sig)
}

// restartOnSamePort runs start, trying again for about a second while the
// port is taken: the port was the server's, and whatever took it in the
// meantime may let it go soon.
func restartOnSamePort(start func() error) error {
	var err error
	for range 5 {
		if err = start(); !errors.Is(err, errPortTaken) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}
