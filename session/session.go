// Package session mounts a ringfuse filesystem and serves it: it ties the
// mount, the server core and the channels together, and owns their
// shutdown. It is what the ringfuse command and the tests use.
package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// Options configure a Session. The zero value mounts over /dev/fuse with
// default server settings.
type Options struct {
	Mount  mount.Options
	Server server.Options
	// Readers is the number of /dev/fuse reader goroutines (0: default).
	Readers int
	// InitTimeout bounds the wait for the kernel's INIT (0: 10 s).
	InitTimeout time.Duration
	// Uring, if not nil, serves over FUSE-over-io_uring next to /dev/fuse
	// (-o io_uring) with these channel options. If the kernel does not
	// offer it, the session serves over /dev/fuse alone; Ring().Err()
	// says why.
	Uring *ring.Options
	// Coalesce is the forget-coalescing window of the /dev/fuse readers
	// (see devfuse.Coalesce): 0 means DevFuseCoalesce, or UringCoalesce
	// with Uring set; negative turns coalescing off.
	Coalesce time.Duration
}

// Session is one mounted filesystem and the goroutines serving it.
type Session struct {
	dir    string
	conn   *mount.Conn
	srv    *server.Server
	ring   *ring.Channel // nil without Options.Uring
	done   chan struct{}
	err    error
	connID uint32
	// coalesced counts the forget coalescing of the /dev/fuse readers
	// (nil if off).
	coalesced *devfuse.CoalesceStats

	unmountOnce sync.Once
	unmountErr  error
}

// Mount mounts fsys on dir, starts serving it and waits until the kernel's
// INIT has been answered, so the mount is usable when Mount returns. It
// refuses a filesystem with a method named like an operation that the
// server would not call ([ringfuse.Check]). The
// caller must call Unmount. For a filesystem that is [ringfuse.KernelChecked],
// a mount that users other than this process can reach (AllowOther, or a
// UserID or GroupID of another user) brings DefaultPermissions with it.
func Mount(dir string, fsys ringfuse.FileSystem, opts *Options) (*Session, error) {
	if err := ringfuse.Check(fsys); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	owner := ownerOf(&o.Mount)
	if kc, ok := fsys.(ringfuse.KernelChecked); ok && kc.KernelChecksPermissions() && (o.Mount.AllowOther || owner != nil) {
		o.Mount.DefaultPermissions = true
	}
	conn, err := mount.Mount(dir, &o.Mount)
	if err != nil {
		return nil, err
	}
	var rc *ring.Channel
	if o.Uring != nil {
		ro := *o.Uring
		if ro.Host == nil {
			ro.Host = host{}
		}
		rc = ring.New(conn.Fd(), &ro)
		o.Server.Transport = rc
	}
	srv := server.New(fsys, &o.Server)
	s := &Session{dir: conn.Mountpoint(), conn: conn, srv: srv, ring: rc, done: make(chan struct{})}
	s.connID, _ = conn.ConnID()
	fd := devfuse.FD(conn.Fd())
	srv.SetBacking(fd.BackingOpen, fd.BackingClose)
	srv.SetNotifyDevice(fd)
	wf := newWaitingFile(s.connID)
	dopts := &devfuse.Options{Readers: o.Readers, Coalesce: coalesce(&o, rc, wf)}
	if dopts.Coalesce != nil {
		s.coalesced = new(devfuse.CoalesceStats)
		dopts.Coalesce.Stats = s.coalesced
	}
	go func() {
		s.err = devfuse.Serve(srv, fd, dopts)
		// The connection is gone: the ring queues' entries have
		// ended or are ending; stop them and free their buffers.
		s.stopRing()
		close(s.done)
	}()
	timeout := o.InitTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	select {
	case <-srv.Initialized():
		if err := disablePoll(s.dir, owner); err != nil {
			s.forceClose()
			return nil, err
		}
		return s, nil
	case <-s.done:
		s.forceClose()
		return nil, fmt.Errorf("session: serving ended before INIT: %w", s.err)
	case <-time.After(timeout):
		s.forceClose()
		return nil, fmt.Errorf("session: no INIT from the kernel within %v", timeout)
	}
}

// Server returns the server core, for statistics and for notifications to
// the kernel (Server.InvalInode, Server.Store, ...).
func (s *Session) Server() *server.Server { return s.srv }

// Coalescing returns the counts of the /dev/fuse readers' forget
// coalescing, or nil if it is off.
func (s *Session) Coalescing() *devfuse.CoalesceStats { return s.coalesced }

// Ring returns the io_uring channel, or nil if Options.Uring was nil.
func (s *Session) Ring() *ring.Channel { return s.ring }

// stopRing stops the io_uring channel, if any.
func (s *Session) stopRing() {
	if s.ring != nil {
		s.ring.Stop()
	}
}

// Dir returns the mount point.
func (s *Session) Dir() string { return s.dir }

// ConnID returns the fusectl connection number (0 if unknown).
func (s *Session) ConnID() uint32 { return s.connID }

// Done is closed when serving has ended: after an unmount, an abort, or a
// fatal channel error.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why serving ended, once Done is closed; nil after a normal
// unmount.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Wait blocks until serving ends or ctx is done.
func (s *Session) Wait(ctx context.Context) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unmount unmounts and waits for the channels to stop. If the mount is
// busy or the server does not stop within a few seconds, it aborts the
// connection and detaches the mount, so that no hung mount is left behind;
// the returned error then says what happened.
func (s *Session) Unmount() error {
	s.unmountOnce.Do(func() { s.unmountErr = s.unmount() })
	return s.unmountErr
}

func (s *Session) unmount() error {
	var errs []error
	if err := mount.Unmount(s.dir); err != nil && !errors.Is(err, mount.ErrNotMounted) {
		errs = append(errs, err)
		if ferr := mount.ForceUnmount(s.dir, s.connID); ferr != nil && !errors.Is(ferr, mount.ErrNotMounted) {
			errs = append(errs, ferr)
		}
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		errs = append(errs, errors.New("session: server did not stop 5 s after unmount; aborting"))
		s.forceClose()
		<-s.done
	}
	s.stopRing()
	s.srv.SetNotifyDevice(nil) // no notification may reach a closed descriptor
	s.conn.Close()
	return errors.Join(errs...)
}

// forceClose aborts the connection and detaches the mount; the readers
// then see ECONNABORTED or ENODEV.
func (s *Session) forceClose() {
	_ = mount.ForceUnmount(s.dir, s.connID)
	select {
	case <-s.done:
		s.stopRing()
	case <-time.After(5 * time.Second):
	}
	s.srv.SetNotifyDevice(nil) // no notification may reach a closed descriptor
	s.conn.Close()
}

// ids are a user and group ID.
type ids struct{ uid, gid uint32 }

// ownerOf returns the user and group a mount is for when they are not this
// process's (user_id=, group_id= of another user), or nil. Without
// allow_other the kernel lets only that user in: its real, effective and
// saved IDs must all match (fuse_permissible_uidgid), so not even root may
// enter.
func ownerOf(o *mount.Options) *ids {
	uid, gid := uint32(unix.Getuid()), uint32(unix.Getgid())
	own := ids{uid, gid}
	if o.UserID != nil {
		own.uid = *o.UserID
	}
	if o.GroupID != nil {
		own.gid = *o.GroupID
	}
	if o.AllowOther || own == (ids{uid, gid}) && uid == uint32(unix.Geteuid()) && gid == uint32(unix.Getegid()) {
		return nil
	}
	return &own
}
