package smb2

// This file is azfs's patch to github.com/cloudsoda/go-smb2 (see
// AZFS-PATCH.md): hard links, which are how a file gets a name without
// replacing one that exists, and what a client needs to know of the
// security of its session.

import (
	"os"

	"github.com/cloudsoda/go-smb2/internal/smb2"
)

// Link makes newname a second name of the file oldname, like os.Link. It
// never replaces: if newname exists it fails with an error wrapping
// os.ErrExist (STATUS_OBJECT_NAME_COLLISION), atomically on the server, so
// that of several clients linking to one name exactly one succeeds.
func (fs *Share) Link(oldname, newname string) error {
	oldname = normPath(oldname)
	newname = normPath(newname)

	if err := validatePath("link from", oldname, false); err != nil {
		return err
	}
	if err := validatePath("link to", newname, false); err != nil {
		return err
	}

	create := &smb2.CreateRequest{
		RequestedOplockLevel: smb2.SMB2_OPLOCK_LEVEL_NONE,
		ImpersonationLevel:   smb2.Impersonation,
		DesiredAccess:        smb2.FILE_WRITE_ATTRIBUTES | smb2.SYNCHRONIZE,
		FileAttributes:       smb2.FILE_ATTRIBUTE_NORMAL,
		ShareAccess:          smb2.FILE_SHARE_READ | smb2.FILE_SHARE_WRITE | smb2.FILE_SHARE_DELETE,
		CreateDisposition:    smb2.FILE_OPEN,
		CreateOptions:        smb2.FILE_OPEN_REPARSE_POINT,
		Mapping:              fs.mapping,
	}
	f, err := fs.createFile(oldname, create, false)
	if err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}

	info := &smb2.SetInfoRequest{
		FileInfoClass: smb2.FileLinkInformation,
		Input: &smb2.FileLinkInformationType2Encoder{
			ReplaceIfExists: 0,
			FileName:        newname,
			Mapping:         fs.mapping,
		},
	}
	err = f.setInfo(info)
	if e := f.close(); err == nil {
		err = e
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// Dialect returns the SMB dialect the session negotiated, such as 0x311
// for SMB 3.1.1.
func (c *Session) Dialect() uint16 {
	return c.s.dialect
}

// Signed reports whether every message of the session is signed and every
// answer's signature checked: signing was required (by the client's
// Negotiator or by the server) and the session is neither a guest's nor
// anonymous.
func (c *Session) Signed() bool {
	return c.s.requireSigning && c.s.sessionFlags&(smb2.SMB2_SESSION_FLAG_IS_GUEST|smb2.SMB2_SESSION_FLAG_IS_NULL) == 0
}

// Encrypted reports whether the messages of this tree connection are
// encrypted: the server asked for it for the session or for the share.
func (fs *Share) Encrypted() bool {
	s := fs.treeConn.session
	return s.encrypter != nil &&
		(s.sessionFlags&smb2.SMB2_SESSION_FLAG_ENCRYPT_DATA != 0 || fs.treeConn.shareFlags&smb2.SMB2_SHAREFLAG_ENCRYPT_DATA != 0)
}

// OpenInfo returns what the server said of the file when it was opened
// (the CREATE response): its size, times and attributes, without asking
// again as Stat does. Its FileId is 0.
func (f *File) OpenInfo() os.FileInfo {
	return f.fileStat
}
