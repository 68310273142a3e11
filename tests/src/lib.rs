//! End-to-end tests live in `tests/tests/`: they run the real `crawlq`
//! binary (built by `make test` before the tests run) as separate
//! processes against a real nats-server, the bundled sample site, and a
//! local folder or a real S3 server.
