// Command memtree serves a copy of a directory tree held in memory, written
// three ways: with ringfuse's node-tree API (nodefs: MemDir and
// MemRegularFile), with ringfuse's raw API, and with go-fuse v2.12.1's fs
// package (fs.MemRegularFile and a directory node). It is the daemon of
// the same-run comparison in docs/nodefs.md, for ringbench's -config:
//
//	memtree -api nodefs|raw|gofuse [-uring] SRC MNT
//
// SRC is read once at start: its directories and regular files (with
// their contents) become the in-memory tree, which new files and
// directories can join. SIGTERM or SIGINT unmounts.
package main

import (
	"context"
	"errors"
	"flag"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// timeout is the entry and attribute timeout of every variant: ringbench's
// default for the FUSE configurations.
const timeout = time.Second

func main() {
	log.SetFlags(0)
	log.SetPrefix("memtree: ")
	api := flag.String("api", "nodefs", "nodefs, raw or gofuse")
	uring := flag.Bool("uring", false, "serve over FUSE-over-io_uring (ringfuse only)")
	flag.Parse()
	if flag.NArg() != 2 {
		log.Fatal("usage: memtree -api nodefs|raw|gofuse [-uring] SRC MNT")
	}
	src, mnt := flag.Arg(0), flag.Arg(1)
	ents, err := load(src)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var unmount func() error
	switch *api {
	case "nodefs":
		unmount, err = serveNodefs(mnt, ents, *uring)
	case "raw":
		unmount, err = serveRaw(mnt, ents, *uring)
	case "gofuse":
		if *uring {
			log.Fatal("go-fuse has no io_uring transport")
		}
		unmount, err = serveGofuse(mnt, ents)
	default:
		log.Fatalf("unknown -api %q", *api)
	}
	if err != nil {
		log.Fatal(err)
	}
	<-ctx.Done()
	if err := unmount(); err != nil {
		log.Fatal(err)
	}
}

// entry is one directory or regular file of the source tree.
type entry struct {
	path string // slash-separated, relative to the source
	dir  bool
	mode uint32 // permission bits
	data []byte
}

// load reads the tree under src, parents before children.
func load(src string) ([]entry, error) {
	var ents []entry
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{path: filepath.ToSlash(rel), dir: d.IsDir(), mode: uint32(info.Mode().Perm())}
		switch {
		case d.IsDir():
		case d.Type().IsRegular():
			if e.data, err = os.ReadFile(p); err != nil {
				return err
			}
		default:
			return nil // only directories and regular files
		}
		ents = append(ents, e)
		return nil
	})
	if err == nil && len(ents) == 0 {
		err = errors.New(src + " is empty")
	}
	return ents, err
}
