//! The download path against a local HTTP server on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use trainer::data::fetch::{self, FileSpec};
use trainer::data::Error;

/// Serves `files` (path -> body) for `max_requests` requests, then stops.
fn serve(files: Vec<(String, Vec<u8>)>, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                    break;
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let found = files.iter().find(|(p, _)| *p == path);
            let (status, body): (&str, &[u8]) = match found {
                Some((_, b)) => ("200 OK", b),
                None => ("404 Not Found", b"not found"),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}/")
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn downloads_verify_gunzip_and_store_atomically() {
    let content = trainer::data::idx::encode(&[3], &[1, 2, 3]);
    let spec = FileSpec {
        name: "tiny-labels-idx1-ubyte",
        sha256: leak(fetch::sha256_hex(&content)),
    };
    // first mirror 404s, second serves the file
    let good = serve(vec![("/tiny-labels-idx1-ubyte.gz".into(), gz(&content))], 4);
    let bad = serve(vec![], 4);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("mnist");
    let path = fetch::fetch_first(&spec, &[bad, good], &dest).expect("download");
    assert_eq!(std::fs::read(&path).expect("read"), content);
    assert_eq!(
        trainer::data::idx::read_labels(&path).expect("parse"),
        vec![1, 2, 3]
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dest)
        .expect("dir")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

#[test]
fn wrong_checksum_is_refused_and_nothing_is_written() {
    let content = trainer::data::idx::encode(&[3], &[1, 2, 3]);
    let spec = FileSpec {
        name: "tiny-labels-idx1-ubyte",
        sha256: "0000000000000000000000000000000000000000000000000000000000000000",
    };
    let url = serve(vec![("/tiny-labels-idx1-ubyte.gz".into(), gz(&content))], 2);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("mnist");
    let err = fetch::fetch_first(&spec, &[url], &dest).expect_err("checksum must fail");
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("sha256 mismatch") && msg.contains("127.0.0.1"),
        "{msg}"
    );
    assert!(!dest.exists(), "nothing written on a bad checksum");
}

#[test]
fn unreachable_server_is_a_download_error_naming_the_url() {
    // bind then drop: the port is closed
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let err = fetch::download(&format!("http://127.0.0.1:{port}/x.gz")).expect_err("closed port");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}/x.gz")),
        "{err}"
    );
}
