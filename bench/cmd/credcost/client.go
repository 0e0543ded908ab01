package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clientMain is the child process: it prepares one operation on the
// mount, prints "ready", waits for a byte on standard input, repeats the
// operation for the given time, prints "ops N", and exits when standard
// input closes (so that its close of the file, a RELEASE, falls after the
// measured window).
//
// With -ring, the client takes part in a token ring: it reads a token from
// descriptor 3 before each operation and writes it to descriptor 4 after,
// so that the clients' requests reach the daemon strictly in turn. A client
// past its deadline writes the stop token instead; a client that reads it
// passes it on once and stops.
func clientMain(args []string) error {
	fl := flag.NewFlagSet("client", flag.ExitOnError)
	op := fl.String("op", "lookup", "lookup, getattr or read")
	path := fl.String("path", "", "file on the mount")
	dur := fl.Duration("dur", 3*time.Second, "how long to repeat the operation")
	ring := fl.Bool("ring", false, "pass a token through descriptors 3 and 4")
	fl.Parse(args)

	do, cleanup, err := prepare(*op, *path)
	if err != nil {
		return err
	}
	defer cleanup()
	// One operation before the window, so that a first-use cost (the
	// daemon's group lookup for a new caller) is not in it.
	if err := do(); err != nil {
		return fmt.Errorf("%s %s: %w", *op, *path, err)
	}
	fmt.Println("ready")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadByte(); err != nil {
		return fmt.Errorf("wait for go: %w", err)
	}
	var n uint64
	if *ring {
		n, err = runRing(do, *dur)
	} else {
		n, err = runAlone(do, *dur)
	}
	if err != nil {
		return err
	}
	fmt.Printf("ops %d\n", n)
	_, _ = in.ReadByte() // until the parent closes standard input
	return nil
}

func runAlone(do func() error, dur time.Duration) (uint64, error) {
	var n uint64
	deadline := time.Now().Add(dur)
	for {
		if err := do(); err != nil {
			return n, err
		}
		n++
		if n%64 == 0 && time.Now().After(deadline) {
			return n, nil
		}
	}
}

const (
	tokGo   = 'g'
	tokStop = 's'
)

func runRing(do func() error, dur time.Duration) (uint64, error) {
	rd, wr := os.NewFile(3, "token-in"), os.NewFile(4, "token-out")
	var n uint64
	tok := make([]byte, 1)
	deadline := time.Now().Add(dur)
	for {
		if _, err := rd.Read(tok); err != nil {
			return n, fmt.Errorf("read token: %w", err)
		}
		if tok[0] == tokStop {
			_, _ = wr.Write(tok) // the next client stops too
			return n, nil
		}
		err := do()
		if err == nil {
			n++
		}
		if err != nil || time.Now().After(deadline) {
			tok[0] = tokStop
		}
		if _, werr := wr.Write(tok); werr != nil && !errors.Is(werr, syscall.EPIPE) {
			return n, fmt.Errorf("write token: %w", werr)
		}
		if err != nil {
			return n, err
		}
	}
}

// prepare returns the operation and what undoes its setup.
//   - lookup: open(path, O_PATH) and close: with entry_timeout=0 a LOOKUP
//     of the name (and, with attr_timeout=0 and default_permissions, a
//     GETATTR of the directory for its search permission);
//   - getattr: fstat of a descriptor open on path: a GETATTR;
//   - read: pread of 4 KiB at a random 4 KiB-aligned offset of path,
//     opened O_DIRECT: a READ.
func prepare(op, path string) (func() error, func(), error) {
	switch op {
	case "lookup":
		return func() error {
			fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			return unix.Close(fd)
		}, func() {}, nil
	case "getattr":
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, err
		}
		var st unix.Stat_t
		return func() error { return unix.Fstat(fd, &st) }, func() { unix.Close(fd) }, nil
	case "read":
		return prepareRead(path)
	}
	return nil, nil, fmt.Errorf("unknown op %q", op)
}

func prepareRead(path string) (func() error, func(), error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	blocks := st.Size / 4096
	if blocks == 0 {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("%s: smaller than 4 KiB", path)
	}
	// O_DIRECT wants an aligned buffer; a mapping is page-aligned.
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	do := func() error {
		n, err := unix.Pread(fd, buf, rand.Int64N(blocks)*4096)
		if err == nil && n != len(buf) {
			err = fmt.Errorf("short read: %d bytes", n)
		}
		return err
	}
	return do, func() { unix.Munmap(buf); unix.Close(fd) }, nil
}
