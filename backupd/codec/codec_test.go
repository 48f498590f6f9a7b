package codec

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

func TestRoundTrip(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	data := append(bytes.Repeat([]byte("etcd key value "), 200_000), make([]byte, 1<<20)...)
	_, _ = rand.Read(data[len(data)-4096:])
	for _, c := range []string{Zstd, Gzip, None} {
		for _, encrypt := range []bool{false, true} {
			name := c
			if encrypt {
				name += "+age"
			}
			t.Run(name, func(t *testing.T) {
				o := Options{Codec: c}
				if encrypt {
					o.Recipients = []age.Recipient{id.Recipient()}
				}
				var stored bytes.Buffer
				w, err := NewWriter(&stored, o)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(data); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if c != None && stored.Len() >= len(data)/2 {
					t.Errorf("%s stored %d bytes of %d", c, stored.Len(), len(data))
				}
				if encrypt {
					if bytes.Contains(stored.Bytes(), []byte("etcd key value")) {
						t.Error("plaintext visible in the encrypted object")
					}
					if _, err := NewReader(bytes.NewReader(stored.Bytes()), c, true, nil); !errors.Is(err, ErrIdentity) {
						t.Errorf("no identity: %v, want ErrIdentity", err)
					}
					if _, err := NewReader(bytes.NewReader(stored.Bytes()), c, true, []age.Identity{other}); !errors.Is(err, ErrIdentity) {
						t.Errorf("wrong identity: %v, want ErrIdentity", err)
					}
				}
				r, err := NewReader(bytes.NewReader(stored.Bytes()), c, encrypt, []age.Identity{other, id})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				r.Close()
				if !bytes.Equal(got, data) {
					t.Fatal("round trip differs")
				}
			})
		}
	}
}

func TestOptionsCheck(t *testing.T) {
	for _, o := range []Options{{Codec: "lz4"}, {Codec: Zstd, Level: 23}, {Codec: Gzip, Level: 10}} {
		if o.Check() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestParseRecipientsAndIdentities(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	rf := filepath.Join(dir, "recipients.txt")
	os.WriteFile(rf, []byte("# ops team\n"+id.Recipient().String()+"\n"), 0o600)
	idf := filepath.Join(dir, "key.txt")
	os.WriteFile(idf, []byte(id.String()+"\n"), 0o600)
	other, _ := age.GenerateX25519Identity()
	rs, names, err := ParseRecipients([]string{other.Recipient().String()}, []string{rf})
	if err != nil || len(rs) != 2 || len(names) != 2 {
		t.Fatalf("ParseRecipients: %d %v %v", len(rs), names, err)
	}
	if _, _, err := ParseRecipients([]string{"age1notakey"}, nil); err == nil {
		t.Error("bad recipient accepted")
	}
	ids, err := ParseIdentityFiles([]string{idf})
	if err != nil || len(ids) != 1 {
		t.Fatalf("ParseIdentityFiles: %v %v", ids, err)
	}
	if _, err := ParseIdentityFiles([]string{rf}); err == nil {
		t.Error("a recipients file parsed as identities")
	}
}
