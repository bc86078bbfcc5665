//! Test certificates made at test time: a CA ([`TestCa`]) and the certificates it signs
//! ([`TestCert`]), valid for `localhost` and `127.0.0.1` or for hosts of the test's choice
//! ([`TestCa::issue_for`]), for server and client use (mutual TLS). Nothing is written to
//! disk unless a test asks ([`TestCert::write`]).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority of its own (a fresh key each time: two `TestCa`s never trust
/// each other's certificates).
pub struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key (PEM), signed by a [`TestCa`].
#[derive(Clone)]
pub struct TestCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl TestCa {
    /// A new CA with `name` as its common name.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate, PEM (what peers trust).
    pub fn pem(&self) -> String {
        self.pem.clone()
    }

    /// A certificate for `name` (its common name), valid for `localhost` and `127.0.0.1`
    /// as a server and as a client.
    pub fn issue(&self, name: &str) -> TestCert {
        self.issue_for(name, &["localhost", "127.0.0.1"])
    }

    /// A certificate for `name` (its common name) whose only subject alternative names are
    /// `hosts` (DNS names or IP addresses, e.g. `127.0.0.2`: on Linux all of 127/8 is
    /// loopback, so members on one machine can each have a host of their own), as a server
    /// and as a client.
    pub fn issue_for(&self, name: &str, hosts: &[&str]) -> TestCert {
        let sans: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("certificate params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("certificate key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signed certificate");
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl TestCert {
    /// Writes `<stem>.crt` and `<stem>.key` into `dir` and returns their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write the certificate");
        std::fs::write(&key, &self.key_pem).expect("write the key");
        (cert, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_pem_and_differ_per_ca() {
        let a = TestCa::new("a");
        let b = TestCa::new("b");
        assert!(a.pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(a.pem(), b.pem());
        let c = a.issue("member");
        assert!(c.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(c.key_pem.contains("PRIVATE KEY-----"));
    }
}
