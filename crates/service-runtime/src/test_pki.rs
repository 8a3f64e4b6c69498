//! A throw-away certificate authority for tests: a CA and the certificates it signs, written as
//! PEM files in a temporary directory (feature `test-pki`; never in a service binary).

use std::path::{Path, PathBuf};

/// A CA whose certificate is `ca.pem` in its directory.
pub struct Pki {
    dir: PathBuf,
    ca: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// A new CA writing its files in `dir` (created if missing).
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "vigil test CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_key,
        };
        let pem = pki
            .ca
            .self_signed(&pki.ca_key)
            .expect("CA certificate")
            .pem();
        std::fs::write(pki.ca_file(), pem).expect("write ca.pem");
        pki
    }

    /// The CA certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Writes `<name>.pem` and `<name>.key` for the DNS name `san`, signed by this CA; returns
    /// their paths.
    pub fn issue(&self, name: &str, san: &str) -> (PathBuf, PathBuf) {
        let params = rcgen::CertificateParams::new(vec![san.to_owned()]).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let issuer = rcgen::Issuer::from_params(&self.ca, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("certificate");
        let (c, k) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).expect("write certificate");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c, k)
    }
}
