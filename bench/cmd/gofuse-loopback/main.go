// Command gofuse-loopback mounts go-fuse v2's loopback filesystem with kernel
// passthrough disabled, as a peer for the ringfuse benchmarks.
//
// Usage:
//
//	gofuse-loopback [-entry-timeout 1s] [-attr-timeout 1s] [-allow-other] [-async-dio] SOURCE MOUNTPOINT
//
// It mounts with mount(2) directly (it must run as root; fusermount is not
// used), stays in the foreground and unmounts on SIGINT or SIGTERM.
//
// Run as root, go-fuse's LoopbackFile offers its descriptor for
// FUSE_PASSTHROUGH (fs.FilePassthroughFder), and reads and writes then bypass
// the daemon. That makes a loopback comparison meaningless for a server-path
// benchmark, so this program turns passthrough off twice: every file handle is
// wrapped in a type that does not implement fs.FilePassthroughFder (go-fuse's
// rawBridge.addBackingID asks for that interface before registering a backing
// file), and CAP_PASSTHROUGH is left out of INIT. The -passthrough flag keeps
// go-fuse's default behaviour, to check that the difference is measurable.
//
// go-fuse does not negotiate FUSE_ASYNC_DIO, so the kernel sends one O_DIRECT
// request per file at a time; -async-dio asks for it, as libfuse does by
// default. ringbench passes it unless told otherwise.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("gofuse-loopback: ")
	entry := flag.Duration("entry-timeout", time.Second, "kernel entry (dentry) cache timeout")
	attr := flag.Duration("attr-timeout", time.Second, "kernel attribute cache timeout")
	allowOther := flag.Bool("allow-other", false, "let users other than the mounting one access the mount")
	passthrough := flag.Bool("passthrough", false, "leave go-fuse's kernel passthrough on (verification only)")
	asyncDIO := flag.Bool("async-dio", false, "also negotiate FUSE_ASYNC_DIO (go-fuse leaves it off), so one file can have several O_DIRECT requests in flight")
	debug := flag.Bool("debug", false, "log every FUSE request")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] SOURCE MOUNTPOINT\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	src, mnt := flag.Arg(0), flag.Arg(1)

	root, err := newRoot(src, !*passthrough)
	if err != nil {
		log.Fatal(err)
	}
	opts := &fs.Options{
		EntryTimeout: entry,
		AttrTimeout:  attr,
		MountOptions: fuse.MountOptions{
			AllowOther:        *allowOther,
			DirectMount:       true,
			DirectMountStrict: true,
			FsName:            src,
			Name:              "gofuse-loopback",
			Debug:             *debug,
		},
	}
	if !*passthrough {
		opts.MountOptions.DisabledCapabilities = fuse.CAP_PASSTHROUGH
	}
	if *asyncDIO {
		opts.MountOptions.ExtraCapabilities = fuse.CAP_ASYNC_DIO
	}
	server, err := fs.Mount(mnt, root, opts)
	if err != nil {
		log.Fatalf("mount %s: %v", mnt, err)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		if err := server.Unmount(); err != nil {
			log.Printf("unmount %s: %v", mnt, err)
		}
	}()
	server.Wait()
}
