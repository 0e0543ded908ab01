package wire

import (
	"strconv"
	"testing"
	"unsafe"
)

// Offsets and sizes below are taken from include/uapi/linux/fuse.h (7.45):
// every field of every C struct that has a Go mirror, in header order.
func TestLayout(t *testing.T) {
	type field struct {
		name string
		got  uintptr
		want uintptr
	}
	var (
		inh  InHeader
		outh OutHeader
		attr Attr
		eo   EntryOut
		fi   ForgetIn
		fo   ForgetOne
		bf   BatchForgetIn
		ga   GetattrIn
		ao   AttrOut
		sxt  SxTime
		sx   Statx
		sxi  StatxIn
		sxo  StatxOut
		mkn  MknodIn
		mkd  MkdirIn
		ren  RenameIn
		ren2 Rename2In
		lnk  LinkIn
		sa   SetattrIn
		oi   OpenIn
		ci   CreateIn
		oo   OpenOut
		rel  ReleaseIn
		fl   FlushIn
		rd   ReadIn
		wr   WriteIn
		wo   WriteOut
		ks   Kstatfs
		so   StatfsOut
		fs   FsyncIn
		sxa  SetxattrIn
		gxi  GetxattrIn
		gxo  GetxattrOut
		lock FileLock
		lki  LkIn
		lko  LkOut
		acc  AccessIn
		ii   InitIn
		io   InitOut
		intr InterruptIn
		fa   FallocateIn
		lsi  LseekIn
		lso  LseekOut
		cfr  CopyFileRangeIn
		cfro CopyFileRangeOut
		de   Dirent
		dep  Direntplus
		ueio UringEntInOut
		urh  UringReqHeader
		ucr  UringCmdReq
	)
	tests := []struct {
		name   string
		size   uintptr
		want   uintptr
		fields []field
	}{
		{"fuse_in_header", unsafe.Sizeof(inh), 40, []field{
			{"len", unsafe.Offsetof(inh.Len), 0},
			{"opcode", unsafe.Offsetof(inh.Opcode), 4},
			{"unique", unsafe.Offsetof(inh.Unique), 8},
			{"nodeid", unsafe.Offsetof(inh.NodeID), 16},
			{"uid", unsafe.Offsetof(inh.UID), 24},
			{"gid", unsafe.Offsetof(inh.GID), 28},
			{"pid", unsafe.Offsetof(inh.PID), 32},
			{"total_extlen", unsafe.Offsetof(inh.TotalExtlen), 36},
		}},
		{"fuse_out_header", unsafe.Sizeof(outh), 16, []field{
			{"len", unsafe.Offsetof(outh.Len), 0},
			{"error", unsafe.Offsetof(outh.Error), 4},
			{"unique", unsafe.Offsetof(outh.Unique), 8},
		}},
		{"fuse_attr", unsafe.Sizeof(attr), 88, []field{
			{"ino", unsafe.Offsetof(attr.Ino), 0},
			{"size", unsafe.Offsetof(attr.Size), 8},
			{"blocks", unsafe.Offsetof(attr.Blocks), 16},
			{"atime", unsafe.Offsetof(attr.Atime), 24},
			{"mtime", unsafe.Offsetof(attr.Mtime), 32},
			{"ctime", unsafe.Offsetof(attr.Ctime), 40},
			{"atimensec", unsafe.Offsetof(attr.Atimensec), 48},
			{"mtimensec", unsafe.Offsetof(attr.Mtimensec), 52},
			{"ctimensec", unsafe.Offsetof(attr.Ctimensec), 56},
			{"mode", unsafe.Offsetof(attr.Mode), 60},
			{"nlink", unsafe.Offsetof(attr.Nlink), 64},
			{"uid", unsafe.Offsetof(attr.UID), 68},
			{"gid", unsafe.Offsetof(attr.GID), 72},
			{"rdev", unsafe.Offsetof(attr.Rdev), 76},
			{"blksize", unsafe.Offsetof(attr.Blksize), 80},
			{"flags", unsafe.Offsetof(attr.Flags), 84},
		}},
		{"fuse_entry_out", unsafe.Sizeof(eo), 128, []field{
			{"nodeid", unsafe.Offsetof(eo.NodeID), 0},
			{"generation", unsafe.Offsetof(eo.Generation), 8},
			{"entry_valid", unsafe.Offsetof(eo.EntryValid), 16},
			{"attr_valid", unsafe.Offsetof(eo.AttrValid), 24},
			{"entry_valid_nsec", unsafe.Offsetof(eo.EntryValidNsec), 32},
			{"attr_valid_nsec", unsafe.Offsetof(eo.AttrValidNsec), 36},
			{"attr", unsafe.Offsetof(eo.Attr), 40},
		}},
		{"fuse_forget_in", unsafe.Sizeof(fi), 8, []field{
			{"nlookup", unsafe.Offsetof(fi.Nlookup), 0},
		}},
		{"fuse_forget_one", unsafe.Sizeof(fo), 16, []field{
			{"nodeid", unsafe.Offsetof(fo.NodeID), 0},
			{"nlookup", unsafe.Offsetof(fo.Nlookup), 8},
		}},
		{"fuse_batch_forget_in", unsafe.Sizeof(bf), 8, []field{
			{"count", unsafe.Offsetof(bf.Count), 0},
		}},
		{"fuse_getattr_in", unsafe.Sizeof(ga), 16, []field{
			{"getattr_flags", unsafe.Offsetof(ga.GetattrFlags), 0},
			{"fh", unsafe.Offsetof(ga.Fh), 8},
		}},
		{"fuse_attr_out", unsafe.Sizeof(ao), 104, []field{
			{"attr_valid", unsafe.Offsetof(ao.AttrValid), 0},
			{"attr_valid_nsec", unsafe.Offsetof(ao.AttrValidNsec), 8},
			{"attr", unsafe.Offsetof(ao.Attr), 16},
		}},
		{"fuse_sx_time", unsafe.Sizeof(sxt), 16, []field{
			{"tv_sec", unsafe.Offsetof(sxt.Sec), 0},
			{"tv_nsec", unsafe.Offsetof(sxt.Nsec), 8},
		}},
		{"fuse_statx", unsafe.Sizeof(sx), 256, []field{
			{"mask", unsafe.Offsetof(sx.Mask), 0},
			{"blksize", unsafe.Offsetof(sx.Blksize), 4},
			{"attributes", unsafe.Offsetof(sx.Attributes), 8},
			{"nlink", unsafe.Offsetof(sx.Nlink), 16},
			{"uid", unsafe.Offsetof(sx.UID), 20},
			{"gid", unsafe.Offsetof(sx.GID), 24},
			{"mode", unsafe.Offsetof(sx.Mode), 28},
			{"ino", unsafe.Offsetof(sx.Ino), 32},
			{"size", unsafe.Offsetof(sx.Size), 40},
			{"blocks", unsafe.Offsetof(sx.Blocks), 48},
			{"attributes_mask", unsafe.Offsetof(sx.AttributesMask), 56},
			{"atime", unsafe.Offsetof(sx.Atime), 64},
			{"btime", unsafe.Offsetof(sx.Btime), 80},
			{"ctime", unsafe.Offsetof(sx.Ctime), 96},
			{"mtime", unsafe.Offsetof(sx.Mtime), 112},
			{"rdev_major", unsafe.Offsetof(sx.RdevMajor), 128},
			{"rdev_minor", unsafe.Offsetof(sx.RdevMinor), 132},
			{"dev_major", unsafe.Offsetof(sx.DevMajor), 136},
			{"dev_minor", unsafe.Offsetof(sx.DevMinor), 140},
		}},
		{"fuse_statx_in", unsafe.Sizeof(sxi), 24, []field{
			{"getattr_flags", unsafe.Offsetof(sxi.GetattrFlags), 0},
			{"fh", unsafe.Offsetof(sxi.Fh), 8},
			{"sx_flags", unsafe.Offsetof(sxi.SxFlags), 16},
			{"sx_mask", unsafe.Offsetof(sxi.SxMask), 20},
		}},
		{"fuse_statx_out", unsafe.Sizeof(sxo), 288, []field{
			{"attr_valid", unsafe.Offsetof(sxo.AttrValid), 0},
			{"attr_valid_nsec", unsafe.Offsetof(sxo.AttrValidNsec), 8},
			{"flags", unsafe.Offsetof(sxo.Flags), 12},
			{"stat", unsafe.Offsetof(sxo.Stat), 32},
		}},
		{"fuse_mknod_in", unsafe.Sizeof(mkn), 16, []field{
			{"mode", unsafe.Offsetof(mkn.Mode), 0},
			{"rdev", unsafe.Offsetof(mkn.Rdev), 4},
			{"umask", unsafe.Offsetof(mkn.Umask), 8},
		}},
		{"fuse_mkdir_in", unsafe.Sizeof(mkd), 8, []field{
			{"mode", unsafe.Offsetof(mkd.Mode), 0},
			{"umask", unsafe.Offsetof(mkd.Umask), 4},
		}},
		{"fuse_rename_in", unsafe.Sizeof(ren), 8, []field{
			{"newdir", unsafe.Offsetof(ren.Newdir), 0},
		}},
		{"fuse_rename2_in", unsafe.Sizeof(ren2), 16, []field{
			{"newdir", unsafe.Offsetof(ren2.Newdir), 0},
			{"flags", unsafe.Offsetof(ren2.Flags), 8},
		}},
		{"fuse_link_in", unsafe.Sizeof(lnk), 8, []field{
			{"oldnodeid", unsafe.Offsetof(lnk.Oldnodeid), 0},
		}},
		{"fuse_setattr_in", unsafe.Sizeof(sa), 88, []field{
			{"valid", unsafe.Offsetof(sa.Valid), 0},
			{"fh", unsafe.Offsetof(sa.Fh), 8},
			{"size", unsafe.Offsetof(sa.Size), 16},
			{"lock_owner", unsafe.Offsetof(sa.LockOwner), 24},
			{"atime", unsafe.Offsetof(sa.Atime), 32},
			{"mtime", unsafe.Offsetof(sa.Mtime), 40},
			{"ctime", unsafe.Offsetof(sa.Ctime), 48},
			{"atimensec", unsafe.Offsetof(sa.Atimensec), 56},
			{"mtimensec", unsafe.Offsetof(sa.Mtimensec), 60},
			{"ctimensec", unsafe.Offsetof(sa.Ctimensec), 64},
			{"mode", unsafe.Offsetof(sa.Mode), 68},
			{"uid", unsafe.Offsetof(sa.UID), 76},
			{"gid", unsafe.Offsetof(sa.GID), 80},
		}},
		{"fuse_open_in", unsafe.Sizeof(oi), 8, []field{
			{"flags", unsafe.Offsetof(oi.Flags), 0},
			{"open_flags", unsafe.Offsetof(oi.OpenFlags), 4},
		}},
		{"fuse_create_in", unsafe.Sizeof(ci), 16, []field{
			{"flags", unsafe.Offsetof(ci.Flags), 0},
			{"mode", unsafe.Offsetof(ci.Mode), 4},
			{"umask", unsafe.Offsetof(ci.Umask), 8},
			{"open_flags", unsafe.Offsetof(ci.OpenFlags), 12},
		}},
		{"fuse_open_out", unsafe.Sizeof(oo), 16, []field{
			{"fh", unsafe.Offsetof(oo.Fh), 0},
			{"open_flags", unsafe.Offsetof(oo.OpenFlags), 8},
			{"backing_id", unsafe.Offsetof(oo.BackingID), 12},
		}},
		{"fuse_release_in", unsafe.Sizeof(rel), 24, []field{
			{"fh", unsafe.Offsetof(rel.Fh), 0},
			{"flags", unsafe.Offsetof(rel.Flags), 8},
			{"release_flags", unsafe.Offsetof(rel.ReleaseFlags), 12},
			{"lock_owner", unsafe.Offsetof(rel.LockOwner), 16},
		}},
		{"fuse_flush_in", unsafe.Sizeof(fl), 24, []field{
			{"fh", unsafe.Offsetof(fl.Fh), 0},
			{"lock_owner", unsafe.Offsetof(fl.LockOwner), 16},
		}},
		{"fuse_read_in", unsafe.Sizeof(rd), 40, []field{
			{"fh", unsafe.Offsetof(rd.Fh), 0},
			{"offset", unsafe.Offsetof(rd.Offset), 8},
			{"size", unsafe.Offsetof(rd.Size), 16},
			{"read_flags", unsafe.Offsetof(rd.ReadFlags), 20},
			{"lock_owner", unsafe.Offsetof(rd.LockOwner), 24},
			{"flags", unsafe.Offsetof(rd.Flags), 32},
		}},
		{"fuse_write_in", unsafe.Sizeof(wr), 40, []field{
			{"fh", unsafe.Offsetof(wr.Fh), 0},
			{"offset", unsafe.Offsetof(wr.Offset), 8},
			{"size", unsafe.Offsetof(wr.Size), 16},
			{"write_flags", unsafe.Offsetof(wr.WriteFlags), 20},
			{"lock_owner", unsafe.Offsetof(wr.LockOwner), 24},
			{"flags", unsafe.Offsetof(wr.Flags), 32},
		}},
		{"fuse_write_out", unsafe.Sizeof(wo), 8, []field{
			{"size", unsafe.Offsetof(wo.Size), 0},
		}},
		{"fuse_kstatfs", unsafe.Sizeof(ks), 80, []field{
			{"blocks", unsafe.Offsetof(ks.Blocks), 0},
			{"bfree", unsafe.Offsetof(ks.Bfree), 8},
			{"bavail", unsafe.Offsetof(ks.Bavail), 16},
			{"files", unsafe.Offsetof(ks.Files), 24},
			{"ffree", unsafe.Offsetof(ks.Ffree), 32},
			{"bsize", unsafe.Offsetof(ks.Bsize), 40},
			{"namelen", unsafe.Offsetof(ks.Namelen), 44},
			{"frsize", unsafe.Offsetof(ks.Frsize), 48},
		}},
		{"fuse_statfs_out", unsafe.Sizeof(so), 80, []field{
			{"st", unsafe.Offsetof(so.St), 0},
		}},
		{"fuse_fsync_in", unsafe.Sizeof(fs), 16, []field{
			{"fh", unsafe.Offsetof(fs.Fh), 0},
			{"fsync_flags", unsafe.Offsetof(fs.FsyncFlags), 8},
		}},
		{"fuse_setxattr_in", unsafe.Sizeof(sxa), 16, []field{
			{"size", unsafe.Offsetof(sxa.Size), 0},
			{"flags", unsafe.Offsetof(sxa.Flags), 4},
			{"setxattr_flags", unsafe.Offsetof(sxa.SetxattrFlags), 8},
		}},
		{"fuse_getxattr_in", unsafe.Sizeof(gxi), 8, []field{
			{"size", unsafe.Offsetof(gxi.Size), 0},
		}},
		{"fuse_getxattr_out", unsafe.Sizeof(gxo), 8, []field{
			{"size", unsafe.Offsetof(gxo.Size), 0},
		}},
		{"fuse_file_lock", unsafe.Sizeof(lock), 24, []field{
			{"start", unsafe.Offsetof(lock.Start), 0},
			{"end", unsafe.Offsetof(lock.End), 8},
			{"type", unsafe.Offsetof(lock.Type), 16},
			{"pid", unsafe.Offsetof(lock.PID), 20},
		}},
		{"fuse_lk_in", unsafe.Sizeof(lki), 48, []field{
			{"fh", unsafe.Offsetof(lki.Fh), 0},
			{"owner", unsafe.Offsetof(lki.Owner), 8},
			{"lk", unsafe.Offsetof(lki.Lk), 16},
			{"lk_flags", unsafe.Offsetof(lki.LkFlags), 40},
		}},
		{"fuse_lk_out", unsafe.Sizeof(lko), 24, []field{
			{"lk", unsafe.Offsetof(lko.Lk), 0},
		}},
		{"fuse_access_in", unsafe.Sizeof(acc), 8, []field{
			{"mask", unsafe.Offsetof(acc.Mask), 0},
		}},
		{"fuse_init_in", unsafe.Sizeof(ii), 64, []field{
			{"major", unsafe.Offsetof(ii.Major), 0},
			{"minor", unsafe.Offsetof(ii.Minor), 4},
			{"max_readahead", unsafe.Offsetof(ii.MaxReadahead), 8},
			{"flags", unsafe.Offsetof(ii.Flags), 12},
			{"flags2", unsafe.Offsetof(ii.Flags2), 16},
		}},
		{"fuse_init_out", unsafe.Sizeof(io), 64, []field{
			{"major", unsafe.Offsetof(io.Major), 0},
			{"minor", unsafe.Offsetof(io.Minor), 4},
			{"max_readahead", unsafe.Offsetof(io.MaxReadahead), 8},
			{"flags", unsafe.Offsetof(io.Flags), 12},
			{"max_background", unsafe.Offsetof(io.MaxBackground), 16},
			{"congestion_threshold", unsafe.Offsetof(io.CongestionThreshold), 18},
			{"max_write", unsafe.Offsetof(io.MaxWrite), 20},
			{"time_gran", unsafe.Offsetof(io.TimeGran), 24},
			{"max_pages", unsafe.Offsetof(io.MaxPages), 28},
			{"map_alignment", unsafe.Offsetof(io.MapAlignment), 30},
			{"flags2", unsafe.Offsetof(io.Flags2), 32},
			{"max_stack_depth", unsafe.Offsetof(io.MaxStackDepth), 36},
			{"request_timeout", unsafe.Offsetof(io.RequestTimeout), 40},
		}},
		{"fuse_interrupt_in", unsafe.Sizeof(intr), 8, []field{
			{"unique", unsafe.Offsetof(intr.Unique), 0},
		}},
		{"fuse_fallocate_in", unsafe.Sizeof(fa), 32, []field{
			{"fh", unsafe.Offsetof(fa.Fh), 0},
			{"offset", unsafe.Offsetof(fa.Offset), 8},
			{"length", unsafe.Offsetof(fa.Length), 16},
			{"mode", unsafe.Offsetof(fa.Mode), 24},
		}},
		{"fuse_lseek_in", unsafe.Sizeof(lsi), 24, []field{
			{"fh", unsafe.Offsetof(lsi.Fh), 0},
			{"offset", unsafe.Offsetof(lsi.Offset), 8},
			{"whence", unsafe.Offsetof(lsi.Whence), 16},
		}},
		{"fuse_lseek_out", unsafe.Sizeof(lso), 8, []field{
			{"offset", unsafe.Offsetof(lso.Offset), 0},
		}},
		{"fuse_copy_file_range_in", unsafe.Sizeof(cfr), 56, []field{
			{"fh_in", unsafe.Offsetof(cfr.FhIn), 0},
			{"off_in", unsafe.Offsetof(cfr.OffIn), 8},
			{"nodeid_out", unsafe.Offsetof(cfr.NodeidOut), 16},
			{"fh_out", unsafe.Offsetof(cfr.FhOut), 24},
			{"off_out", unsafe.Offsetof(cfr.OffOut), 32},
			{"len", unsafe.Offsetof(cfr.Len), 40},
			{"flags", unsafe.Offsetof(cfr.Flags), 48},
		}},
		{"fuse_copy_file_range_out", unsafe.Sizeof(cfro), 8, []field{
			{"bytes_copied", unsafe.Offsetof(cfro.BytesCopied), 0},
		}},
		{"fuse_dirent", unsafe.Sizeof(de), 24, []field{ // FUSE_NAME_OFFSET = 24
			{"ino", unsafe.Offsetof(de.Ino), 0},
			{"off", unsafe.Offsetof(de.Off), 8},
			{"namelen", unsafe.Offsetof(de.Namelen), 16},
			{"type", unsafe.Offsetof(de.Type), 20},
		}},
		{"fuse_direntplus", unsafe.Sizeof(dep), 152, []field{ // FUSE_NAME_OFFSET_DIRENTPLUS = 152
			{"entry_out", unsafe.Offsetof(dep.Entry), 0},
			{"dirent", unsafe.Offsetof(dep.Dirent), 128},
		}},
		{"fuse_uring_ent_in_out", unsafe.Sizeof(ueio), 32, []field{
			{"flags", unsafe.Offsetof(ueio.Flags), 0},
			{"commit_id", unsafe.Offsetof(ueio.CommitID), 8},
			{"payload_sz", unsafe.Offsetof(ueio.PayloadSz), 16},
		}},
		{"fuse_uring_req_header", unsafe.Sizeof(urh), 288, []field{
			{"in_out", unsafe.Offsetof(urh.InOut), 0},
			{"op_in", unsafe.Offsetof(urh.OpIn), 128},
			{"ring_ent_in_out", unsafe.Offsetof(urh.RingEnt), 256},
		}},
		{"fuse_uring_cmd_req", unsafe.Sizeof(ucr), 24, []field{
			{"flags", unsafe.Offsetof(ucr.Flags), 0},
			{"commit_id", unsafe.Offsetof(ucr.CommitID), 8},
			{"qid", unsafe.Offsetof(ucr.QID), 16},
		}},
	}
	for _, tt := range tests {
		if tt.size != tt.want {
			t.Errorf("sizeof(struct %s) = %d, want %d", tt.name, tt.size, tt.want)
		}
		for _, f := range tt.fields {
			if f.got != f.want {
				t.Errorf("offsetof(struct %s, %s) = %d, want %d", tt.name, f.name, f.got, f.want)
			}
		}
	}
}

// TestSizeofConstants ties each SizeofX constant to the Go struct. The
// compile-time checks in types.go do the same; this test names the culprit.
func TestSizeofConstants(t *testing.T) {
	tests := []struct {
		name       string
		constant   uintptr
		structSize uintptr
	}{
		{"InHeader", SizeofInHeader, unsafe.Sizeof(InHeader{})},
		{"OutHeader", SizeofOutHeader, unsafe.Sizeof(OutHeader{})},
		{"Attr", SizeofAttr, unsafe.Sizeof(Attr{})},
		{"EntryOut", SizeofEntryOut, unsafe.Sizeof(EntryOut{})},
		{"SetattrIn", SizeofSetattrIn, unsafe.Sizeof(SetattrIn{})},
		{"StatxOut", SizeofStatxOut, unsafe.Sizeof(StatxOut{})},
		{"InitIn", SizeofInitIn, unsafe.Sizeof(InitIn{})},
		{"InitOut", SizeofInitOut, unsafe.Sizeof(InitOut{})},
		{"Direntplus", SizeofDirentplus, unsafe.Sizeof(Direntplus{})},
		{"UringReqHeader", SizeofUringReqHeader, unsafe.Sizeof(UringReqHeader{})},
		{"UringCmdReq", SizeofUringCmdReq, unsafe.Sizeof(UringCmdReq{})},
	}
	for _, tt := range tests {
		if tt.constant != tt.structSize {
			t.Errorf("Sizeof%s = %d, struct is %d bytes", tt.name, tt.constant, tt.structSize)
		}
	}
	// The largest per-op header must fit in the ring entry's op_in area.
	if SizeofSetattrIn > FUSE_URING_OP_IN_OUT_SZ {
		t.Errorf("fuse_setattr_in (%d B) does not fit op_in (%d B)", SizeofSetattrIn, FUSE_URING_OP_IN_OUT_SZ)
	}
}

// TestConstants checks flag and enum values against the kernel header.
func TestConstants(t *testing.T) {
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"FUSE_KERNEL_VERSION", FUSE_KERNEL_VERSION, 7},
		{"FUSE_KERNEL_MINOR_VERSION", FUSE_KERNEL_MINOR_VERSION, 46},
		{"FUSE_ROOT_ID", FUSE_ROOT_ID, 1},
		{"FUSE_MIN_READ_BUFFER", FUSE_MIN_READ_BUFFER, 8192},
		{"FUSE_ASYNC_READ", FUSE_ASYNC_READ, 1 << 0},
		{"FUSE_POSIX_LOCKS", FUSE_POSIX_LOCKS, 1 << 1},
		{"FUSE_FILE_OPS", FUSE_FILE_OPS, 1 << 2},
		{"FUSE_ATOMIC_O_TRUNC", FUSE_ATOMIC_O_TRUNC, 1 << 3},
		{"FUSE_EXPORT_SUPPORT", FUSE_EXPORT_SUPPORT, 1 << 4},
		{"FUSE_BIG_WRITES", FUSE_BIG_WRITES, 1 << 5},
		{"FUSE_DONT_MASK", FUSE_DONT_MASK, 1 << 6},
		{"FUSE_SPLICE_WRITE", FUSE_SPLICE_WRITE, 1 << 7},
		{"FUSE_SPLICE_MOVE", FUSE_SPLICE_MOVE, 1 << 8},
		{"FUSE_SPLICE_READ", FUSE_SPLICE_READ, 1 << 9},
		{"FUSE_FLOCK_LOCKS", FUSE_FLOCK_LOCKS, 1 << 10},
		{"FUSE_HAS_IOCTL_DIR", FUSE_HAS_IOCTL_DIR, 1 << 11},
		{"FUSE_AUTO_INVAL_DATA", FUSE_AUTO_INVAL_DATA, 1 << 12},
		{"FUSE_DO_READDIRPLUS", FUSE_DO_READDIRPLUS, 1 << 13},
		{"FUSE_READDIRPLUS_AUTO", FUSE_READDIRPLUS_AUTO, 1 << 14},
		{"FUSE_ASYNC_DIO", FUSE_ASYNC_DIO, 1 << 15},
		{"FUSE_WRITEBACK_CACHE", FUSE_WRITEBACK_CACHE, 1 << 16},
		{"FUSE_NO_OPEN_SUPPORT", FUSE_NO_OPEN_SUPPORT, 1 << 17},
		{"FUSE_PARALLEL_DIROPS", FUSE_PARALLEL_DIROPS, 1 << 18},
		{"FUSE_HANDLE_KILLPRIV", FUSE_HANDLE_KILLPRIV, 1 << 19},
		{"FUSE_POSIX_ACL", FUSE_POSIX_ACL, 1 << 20},
		{"FUSE_ABORT_ERROR", FUSE_ABORT_ERROR, 1 << 21},
		{"FUSE_MAX_PAGES", FUSE_MAX_PAGES, 1 << 22},
		{"FUSE_CACHE_SYMLINKS", FUSE_CACHE_SYMLINKS, 1 << 23},
		{"FUSE_NO_OPENDIR_SUPPORT", FUSE_NO_OPENDIR_SUPPORT, 1 << 24},
		{"FUSE_EXPLICIT_INVAL_DATA", FUSE_EXPLICIT_INVAL_DATA, 1 << 25},
		{"FUSE_MAP_ALIGNMENT", FUSE_MAP_ALIGNMENT, 1 << 26},
		{"FUSE_SUBMOUNTS", FUSE_SUBMOUNTS, 1 << 27},
		{"FUSE_HANDLE_KILLPRIV_V2", FUSE_HANDLE_KILLPRIV_V2, 1 << 28},
		{"FUSE_SETXATTR_EXT", FUSE_SETXATTR_EXT, 1 << 29},
		{"FUSE_INIT_EXT", FUSE_INIT_EXT, 1 << 30},
		{"FUSE_INIT_RESERVED", FUSE_INIT_RESERVED, 1 << 31},
		{"FUSE_SECURITY_CTX", FUSE_SECURITY_CTX, 1 << 32},
		{"FUSE_HAS_INODE_DAX", FUSE_HAS_INODE_DAX, 1 << 33},
		{"FUSE_CREATE_SUPP_GROUP", FUSE_CREATE_SUPP_GROUP, 1 << 34},
		{"FUSE_HAS_EXPIRE_ONLY", FUSE_HAS_EXPIRE_ONLY, 1 << 35},
		{"FUSE_DIRECT_IO_ALLOW_MMAP", FUSE_DIRECT_IO_ALLOW_MMAP, 1 << 36},
		{"FUSE_PASSTHROUGH", FUSE_PASSTHROUGH, 1 << 37},
		{"FUSE_NO_EXPORT_SUPPORT", FUSE_NO_EXPORT_SUPPORT, 1 << 38},
		{"FUSE_HAS_RESEND", FUSE_HAS_RESEND, 1 << 39},
		{"FUSE_ALLOW_IDMAP", FUSE_ALLOW_IDMAP, 1 << 40},
		{"FUSE_OVER_IO_URING", FUSE_OVER_IO_URING, 1 << 41},
		{"FUSE_REQUEST_TIMEOUT", FUSE_REQUEST_TIMEOUT, 1 << 42},
		{"FOPEN_DIRECT_IO", FOPEN_DIRECT_IO, 1 << 0},
		{"FOPEN_KEEP_CACHE", FOPEN_KEEP_CACHE, 1 << 1},
		{"FOPEN_NONSEEKABLE", FOPEN_NONSEEKABLE, 1 << 2},
		{"FOPEN_CACHE_DIR", FOPEN_CACHE_DIR, 1 << 3},
		{"FOPEN_STREAM", FOPEN_STREAM, 1 << 4},
		{"FOPEN_NOFLUSH", FOPEN_NOFLUSH, 1 << 5},
		{"FOPEN_PARALLEL_DIRECT_WRITES", FOPEN_PARALLEL_DIRECT_WRITES, 1 << 6},
		{"FOPEN_PASSTHROUGH", FOPEN_PASSTHROUGH, 1 << 7},
		{"FATTR_MODE", FATTR_MODE, 1 << 0},
		{"FATTR_UID", FATTR_UID, 1 << 1},
		{"FATTR_GID", FATTR_GID, 1 << 2},
		{"FATTR_SIZE", FATTR_SIZE, 1 << 3},
		{"FATTR_ATIME", FATTR_ATIME, 1 << 4},
		{"FATTR_MTIME", FATTR_MTIME, 1 << 5},
		{"FATTR_FH", FATTR_FH, 1 << 6},
		{"FATTR_ATIME_NOW", FATTR_ATIME_NOW, 1 << 7},
		{"FATTR_MTIME_NOW", FATTR_MTIME_NOW, 1 << 8},
		{"FATTR_LOCKOWNER", FATTR_LOCKOWNER, 1 << 9},
		{"FATTR_CTIME", FATTR_CTIME, 1 << 10},
		{"FATTR_KILL_SUIDGID", FATTR_KILL_SUIDGID, 1 << 11},
		{"FUSE_GETATTR_FH", FUSE_GETATTR_FH, 1 << 0},
		{"FUSE_RELEASE_FLUSH", FUSE_RELEASE_FLUSH, 1 << 0},
		{"FUSE_RELEASE_FLOCK_UNLOCK", FUSE_RELEASE_FLOCK_UNLOCK, 1 << 1},
		{"FUSE_WRITE_CACHE", FUSE_WRITE_CACHE, 1 << 0},
		{"FUSE_WRITE_LOCKOWNER", FUSE_WRITE_LOCKOWNER, 1 << 1},
		{"FUSE_WRITE_KILL_SUIDGID", FUSE_WRITE_KILL_SUIDGID, 1 << 2},
		{"FUSE_READ_LOCKOWNER", FUSE_READ_LOCKOWNER, 1 << 1},
		{"FUSE_LK_FLOCK", FUSE_LK_FLOCK, 1 << 0},
		{"FUSE_FSYNC_FDATASYNC", FUSE_FSYNC_FDATASYNC, 1 << 0},
		{"FUSE_OPEN_KILL_SUIDGID", FUSE_OPEN_KILL_SUIDGID, 1 << 0},
		{"FUSE_SETXATTR_ACL_KILL_SGID", FUSE_SETXATTR_ACL_KILL_SGID, 1 << 0},
		{"FUSE_COMPAT_SETXATTR_IN_SIZE", FUSE_COMPAT_SETXATTR_IN_SIZE, 8},
		{"FUSE_COMPAT_22_INIT_OUT_SIZE", FUSE_COMPAT_22_INIT_OUT_SIZE, 24},
		{"FUSE_URING_IN_OUT_HEADER_SZ", FUSE_URING_IN_OUT_HEADER_SZ, 128},
		{"FUSE_URING_OP_IN_OUT_SZ", FUSE_URING_OP_IN_OUT_SZ, 128},
		{"FUSE_IO_URING_CMD_INVALID", uint64(FUSE_IO_URING_CMD_INVALID), 0},
		{"FUSE_IO_URING_CMD_REGISTER", uint64(FUSE_IO_URING_CMD_REGISTER), 1},
		{"FUSE_IO_URING_CMD_COMMIT_AND_FETCH", uint64(FUSE_IO_URING_CMD_COMMIT_AND_FETCH), 2},
		{"FUSE_IO_URING_REGISTER_FORGET_COMMIT", FUSE_IO_URING_REGISTER_FORGET_COMMIT, 1 << 0},
		{"FUSE_URING_IOV_SEGS", FUSE_URING_IOV_SEGS, 2},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

// allOpcodes is enum fuse_opcode of the 7.45 header: value and name.
var allOpcodes = []struct {
	op   Opcode
	num  uint32
	name string
}{
	{FUSE_LOOKUP, 1, "LOOKUP"},
	{FUSE_FORGET, 2, "FORGET"},
	{FUSE_GETATTR, 3, "GETATTR"},
	{FUSE_SETATTR, 4, "SETATTR"},
	{FUSE_READLINK, 5, "READLINK"},
	{FUSE_SYMLINK, 6, "SYMLINK"},
	{FUSE_MKNOD, 8, "MKNOD"},
	{FUSE_MKDIR, 9, "MKDIR"},
	{FUSE_UNLINK, 10, "UNLINK"},
	{FUSE_RMDIR, 11, "RMDIR"},
	{FUSE_RENAME, 12, "RENAME"},
	{FUSE_LINK, 13, "LINK"},
	{FUSE_OPEN, 14, "OPEN"},
	{FUSE_READ, 15, "READ"},
	{FUSE_WRITE, 16, "WRITE"},
	{FUSE_STATFS, 17, "STATFS"},
	{FUSE_RELEASE, 18, "RELEASE"},
	{FUSE_FSYNC, 20, "FSYNC"},
	{FUSE_SETXATTR, 21, "SETXATTR"},
	{FUSE_GETXATTR, 22, "GETXATTR"},
	{FUSE_LISTXATTR, 23, "LISTXATTR"},
	{FUSE_REMOVEXATTR, 24, "REMOVEXATTR"},
	{FUSE_FLUSH, 25, "FLUSH"},
	{FUSE_INIT, 26, "INIT"},
	{FUSE_OPENDIR, 27, "OPENDIR"},
	{FUSE_READDIR, 28, "READDIR"},
	{FUSE_RELEASEDIR, 29, "RELEASEDIR"},
	{FUSE_FSYNCDIR, 30, "FSYNCDIR"},
	{FUSE_GETLK, 31, "GETLK"},
	{FUSE_SETLK, 32, "SETLK"},
	{FUSE_SETLKW, 33, "SETLKW"},
	{FUSE_ACCESS, 34, "ACCESS"},
	{FUSE_CREATE, 35, "CREATE"},
	{FUSE_INTERRUPT, 36, "INTERRUPT"},
	{FUSE_BMAP, 37, "BMAP"},
	{FUSE_DESTROY, 38, "DESTROY"},
	{FUSE_IOCTL, 39, "IOCTL"},
	{FUSE_POLL, 40, "POLL"},
	{FUSE_NOTIFY_REPLY, 41, "NOTIFY_REPLY"},
	{FUSE_BATCH_FORGET, 42, "BATCH_FORGET"},
	{FUSE_FALLOCATE, 43, "FALLOCATE"},
	{FUSE_READDIRPLUS, 44, "READDIRPLUS"},
	{FUSE_RENAME2, 45, "RENAME2"},
	{FUSE_LSEEK, 46, "LSEEK"},
	{FUSE_COPY_FILE_RANGE, 47, "COPY_FILE_RANGE"},
	{FUSE_SETUPMAPPING, 48, "SETUPMAPPING"},
	{FUSE_REMOVEMAPPING, 49, "REMOVEMAPPING"},
	{FUSE_SYNCFS, 50, "SYNCFS"},
	{FUSE_TMPFILE, 51, "TMPFILE"},
	{FUSE_STATX, 52, "STATX"},
	{FUSE_COPY_FILE_RANGE_64, 53, "COPY_FILE_RANGE_64"},
}

func TestOpcodes(t *testing.T) {
	known := map[Opcode]bool{}
	for _, tt := range allOpcodes {
		known[tt.op] = true
		if uint32(tt.op) != tt.num {
			t.Errorf("FUSE_%s = %d, want %d", tt.name, tt.op, tt.num)
		}
		if got := tt.op.String(); got != tt.name {
			t.Errorf("Opcode(%d).String() = %q, want %q", tt.num, got, tt.name)
		}
		if !tt.op.Known() {
			t.Errorf("FUSE_%s.Known() = false", tt.name)
		}
		if tt.op >= OpcodeMax {
			t.Errorf("FUSE_%s = %d is not below OpcodeMax %d", tt.name, tt.op, OpcodeMax)
		}
	}
	for op := Opcode(0); op < OpcodeMax+8; op++ {
		if known[op] {
			continue
		}
		if op.Known() {
			t.Errorf("Opcode(%d).Known() = true for a number enum fuse_opcode lacks", op)
		}
		want := "OPCODE(" + strconv.Itoa(int(op)) + ")"
		if got := op.String(); got != want {
			t.Errorf("Opcode(%d).String() = %q, want %q", op, got, want)
		}
	}
	if CUSE_INIT != 4096 {
		t.Errorf("CUSE_INIT = %d, want 4096", CUSE_INIT)
	}
	if got := CUSE_INIT.String(); got != "CUSE_INIT" {
		t.Errorf("CUSE_INIT.String() = %q", got)
	}
	if CUSE_INIT.Known() {
		t.Error("CUSE_INIT.Known() = true; ringfuse does not serve CUSE")
	}
	if got := Opcode(1 << 31).String(); got != "OPCODE(2147483648)" {
		t.Errorf("Opcode(1<<31).String() = %q", got)
	}
}

func TestNoReply(t *testing.T) {
	want := map[Opcode]bool{
		FUSE_FORGET: true, FUSE_BATCH_FORGET: true, FUSE_INTERRUPT: true, FUSE_NOTIFY_REPLY: true,
	}
	ops := []Opcode{CUSE_INIT, 4095, 4097, 1 << 31}
	for op := Opcode(0); op < OpcodeMax+4; op++ {
		ops = append(ops, op)
	}
	for _, op := range ops {
		if got := op.NoReply(); got != want[op] {
			t.Errorf("%v.NoReply() = %v, want %v", op, got, want[op])
		}
	}
}

func TestMayBlock(t *testing.T) {
	want := map[Opcode]bool{
		FUSE_READ: true, FUSE_WRITE: true, FUSE_FSYNC: true, FUSE_FSYNCDIR: true, FUSE_FALLOCATE: true,
		FUSE_COPY_FILE_RANGE: true, FUSE_COPY_FILE_RANGE_64: true, FUSE_SETLKW: true,
	}
	for op := Opcode(0); op < OpcodeMax+4; op++ {
		if got := op.MayBlock(); got != want[op] {
			t.Errorf("%v.MayBlock() = %v, want %v", op, got, want[op])
		}
	}
}

func TestReplySize(t *testing.T) {
	read := AsBytes(&ReadIn{Size: 4096})
	query := AsBytes(&GetxattrIn{})
	get := AsBytes(&GetxattrIn{Size: 100})
	for _, c := range []struct {
		op       Opcode
		arg      []byte
		size     int
		variable bool
	}{
		{FUSE_LOOKUP, nil, SizeofEntryOut, false},
		{FUSE_CREATE, nil, SizeofEntryOut + SizeofOpenOut, false},
		{FUSE_INIT, nil, SizeofInitOut, true},
		{FUSE_READLINK, nil, 4095, true},
		{FUSE_READ, read, 4096, true},
		{FUSE_READ, nil, 0, true},
		{FUSE_READDIRPLUS, read, 4096, true},
		{FUSE_GETXATTR, query, SizeofGetxattrOut, false},
		{FUSE_LISTXATTR, get, 100, true},
		{FUSE_WRITE, nil, SizeofWriteOut, false},
		{FUSE_COPY_FILE_RANGE_64, nil, SizeofCopyFileRangeOut, false},
		{FUSE_BMAP, nil, 8, false},
		{FUSE_UNLINK, nil, 0, false},
		{FUSE_FORGET, nil, 0, false},
		{OpcodeMax, nil, 0, false},
	} {
		if size, v := ReplySize(c.op, c.arg); size != c.size || v != c.variable {
			t.Errorf("ReplySize(%v) = %d, %v; want %d, %v", c.op, size, v, c.size, c.variable)
		}
	}
}
