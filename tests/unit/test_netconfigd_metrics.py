"""netconfigd's /metrics: router7's nftables counter names, families as labels."""

from prometheus_client import generate_latest

from router7.netconfigd.metrics import Metrics


def test_counters_exported_with_router7_names():
    values = {
        ("inet", "router7", "fwded_ipv4"): (23, 42),
        ("inet", "router7", "fwded_ipv6"): (1, 100),
        ("inet", "router7", "inputc_ipv4"): (5, 6),
    }
    text = generate_latest(Metrics(lambda: values).registry).decode()
    assert 'nftables_filter_forward_packets{family="ipv4"} 23.0' in text
    assert 'nftables_filter_forward_bytes{family="ipv4"} 42.0' in text
    assert 'nftables_filter_forward_bytes{family="ipv6"} 100.0' in text
    assert 'nftables_filter_input_bytes{family="ipv4"} 6.0' in text
    assert "# TYPE nftables_filter_output_packets untyped" in text
    assert "netconfigd_applies_total 0.0" in text


def test_scrape_survives_nft_failure():
    def broken():
        raise RuntimeError("nft not found")

    text = generate_latest(Metrics(broken).registry).decode()
    assert "nftables_filter_forward_packets" in text  # the family, without samples
    assert "netconfigd_apply_errors_total 0.0" in text
