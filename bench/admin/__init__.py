"""The admin's pages against a large registry and ledger: query counts, render times and query plans."""
