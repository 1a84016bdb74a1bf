"""The inference service's input rules, URL policy and micro-batcher, without a model or an engine.

URL fetches go to a real loopback HTTP server that records every request, so
"refused with no fetch" is checked by what that server saw."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time

import pytest
from PIL import Image

from tests.image_server import ImageServer, jpeg
from vistag.service.batcher import Busy, MicroBatcher
from vistag.service.fetch import UrlFetchFailed, UrlPolicy, UrlRefused, fetch_url
from vistag.service.inputs import InputError, Limits, check_urls, load_image, parse_request


@pytest.fixture
def server():
    srv = ImageServer()
    yield srv
    srv.shutdown()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address):
    with pytest.raises(UrlRefused, match="non-public"):
        UrlPolicy(("x.example",)).check_address("x.example", address)


def test_public_addresses_pass_and_private_ones_only_when_allowed():
    UrlPolicy(("x.example",)).check_address("x.example", "93.184.216.34")
    UrlPolicy(("x.example",), allow_private=True).check_address("x.example", "10.1.2.3")
    with pytest.raises(UrlRefused):  # multicast stays refused
        UrlPolicy(("x.example",), allow_private=True).check_address("x.example", "224.0.0.1")


@pytest.mark.parametrize(
    "url,reason",
    [
        ("ftp://img.example.com/a.jpg", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://user:pw@img.example.com/a.jpg", "credentials"),
        ("http://evil.com/a.jpg", "not allowed"),
        ("http://img.example.com.evil.com/a.jpg", "not allowed"),
        ("http://example.com/a.jpg", "not allowed"),
        ("http://[::1/a.jpg", "malformed"),
    ],
)
def test_urls_outside_the_policy_are_refused(url, reason):
    with pytest.raises(UrlRefused, match=reason):
        UrlPolicy(("img.example.com", "*.cdn.example.com")).check_url(url)


def test_suffix_patterns_match_subdomains_only():
    policy = UrlPolicy(("*.cdn.example.com",))
    assert policy.host_allowed("a.cdn.example.com") and policy.host_allowed("x.y.cdn.example.com")
    assert not policy.host_allowed("cdn.example.com") and not policy.host_allowed("evilcdn.example.com")


def test_fetch_from_an_allowed_private_host(server):
    data = fetch_url(f"{server.base}/img.jpg", UrlPolicy(("127.0.0.1",), allow_private=True))
    assert data == jpeg() and server.seen == ["/img.jpg"]


def test_loopback_is_refused_before_any_connection(server):
    with pytest.raises(UrlRefused, match="non-public"):
        fetch_url(f"{server.base}/img.jpg", UrlPolicy(("127.0.0.1",)))
    assert server.seen == []


def test_a_redirect_to_a_disallowed_host_is_refused_and_never_followed(server):
    other = ImageServer()  # "localhost" is not on the list
    try:
        target = f"http://localhost:{other.server_address[1]}/img.jpg"
        with pytest.raises(UrlRefused, match="'localhost' is not allowed"):
            fetch_url(f"{server.base}/redirect?to={target}", UrlPolicy(("127.0.0.1",), allow_private=True))
        assert other.seen == []
        # An allowed redirect is followed.
        hop = f"{server.base}/redirect?to=/img.jpg"
        assert fetch_url(hop, UrlPolicy(("127.0.0.1",), allow_private=True)) == jpeg()
    finally:
        other.shutdown()


def test_size_and_time_limits(server):
    policy = UrlPolicy(("127.0.0.1",), allow_private=True, max_bytes=100_000, timeout=0.5)
    with pytest.raises(UrlFetchFailed, match="limit") as exc:
        fetch_url(f"{server.base}/big", policy)
    assert exc.value.too_large
    with pytest.raises(UrlFetchFailed, match="Timeout|took over"):
        fetch_url(f"{server.base}/slow", policy)
    with pytest.raises(UrlFetchFailed, match="HTTP 404"):
        fetch_url(f"{server.base}/missing.jpg", policy)


def test_request_shapes():
    b64 = base64.b64encode(jpeg()).decode()
    one = parse_request(f'{{"image": "{b64}"}}'.encode(), "application/json", Limits())
    assert one[0].name == "image" and one[0].data == jpeg()
    many = parse_request(
        f'{{"images": ["data:image/jpeg;base64,{b64}", {{"url": "https://a.example/x.jpg"}}, {{"base64": "{b64}"}}]}}'.encode(),
        "application/json; charset=utf-8",
        Limits(),
    )
    assert [i.name for i in many] == ["images[0]", "images[1]", "images[2]"]
    assert many[0].data == many[2].data == jpeg() and many[1].url == "https://a.example/x.jpg"
    raw = parse_request(jpeg(), "image/jpeg", Limits())
    assert raw[0].data == jpeg()


@pytest.mark.parametrize(
    "body,ctype,status,match",
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"image": "a", "images": ["b"]}', "application/json", 400, "send"),
        (b'{"images": []}', "application/json", 400, "non-empty"),
        (b'{"images": [' + b",".join([b'"aGk="'] * 5) + b"]}", "application/json", 413, "over the limit of 4"),
        (b'{"image": "%%%"}', "application/json", 400, "not valid base64"),
        (b'{"image": "gopher://x/y"}', "application/json", 400, "scheme 'gopher'"),
        (b'{"image": 3}', "application/json", 400, "expected a URL"),
        (b'{"images": [{"url": "x", "base64": "y"}]}', "application/json", 400, "images\\[0\\]"),
        (b"abc", "text/plain", 415, "Content-Type"),
        (b"", "image/jpeg", 400, "empty"),
        (b"x" * 2000, "image/png", 413, "image limit"),
    ],
)
def test_bad_requests_get_the_right_status_and_name_the_image(body, ctype, status, match):
    with pytest.raises(InputError, match=match) as exc:
        parse_request(body, ctype, Limits(max_images=4, max_image_bytes=1000))
    assert exc.value.status == status


def test_every_url_is_checked_before_any_is_fetched(server):
    inputs = parse_request(
        f'{{"images": ["{server.base}/img.jpg", "http://evil.example/x.jpg"]}}'.encode(), "application/json", Limits()
    )
    with pytest.raises(InputError, match=r"images\[1\].*not allowed") as exc:
        check_urls(inputs, UrlPolicy(("127.0.0.1",), allow_private=True))
    assert exc.value.status == 400 and server.seen == []


def test_non_images_and_bombs_are_422(server):
    policy, limits = UrlPolicy(("127.0.0.1",), allow_private=True), Limits(max_pixels=1_000_000)
    with pytest.raises(InputError, match="not a decodable image") as exc:
        load_image(
            parse_request(f'{{"image": "{server.base}/text"}}'.encode(), "application/json", limits)[0], policy, limits
        )
    assert exc.value.status == 422
    bomb = io.BytesIO()
    Image.new("1", (4000, 4000)).save(bomb, "PNG")  # a few kB that decode to 16 megapixels
    assert len(bomb.getvalue()) < 10_000
    with pytest.raises(InputError, match="pixel limit") as exc:
        load_image(parse_request(bomb.getvalue(), "image/png", limits)[0], policy, limits)
    assert exc.value.status == 422


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_submits_share_batches_and_keep_their_order():
    sizes = []

    def double(xs):
        time.sleep(0.02)  # a forward pass: the next batch fills meanwhile
        return [x * 2 for x in xs]

    async def go(max_batch):
        batcher = MicroBatcher(double, max_batch=max_batch, max_wait=0.01, observe=sizes.append)
        await batcher.start()
        out = await asyncio.gather(*(batcher.submit(i) for i in range(40)))
        await batcher.stop()
        return out

    assert _run(go(16)) == [i * 2 for i in range(40)]
    assert max(sizes) == 16 and len(sizes) < 40 and sum(sizes) == 40
    sizes.clear()
    assert _run(go(1)) == [i * 2 for i in range(40)]
    assert sizes == [1] * 40


def test_a_full_queue_is_refused_and_a_failing_batch_fails_every_waiter():
    async def go():
        gate = threading.Event()
        batcher = MicroBatcher(lambda xs: (gate.wait(5), xs)[1], max_batch=1, max_queue=2)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)  # taken by the worker, which now waits on the gate
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(Busy, match="more than 2"):
            await batcher.submit(3)
        gate.set()
        assert await first == 0 and await asyncio.gather(*queued) == [1, 2]
        await batcher.stop()

        failing = MicroBatcher(lambda xs: 1 / 0, max_batch=8, max_wait=0.01)
        await failing.start()
        results = await asyncio.gather(*(failing.submit(i) for i in range(3)), return_exceptions=True)
        await failing.stop()
        assert all(isinstance(r, ZeroDivisionError) for r in results)

    _run(go())


def test_a_batch_waits_only_for_announced_images():
    async def go(announce: bool):
        sizes = []
        batcher = MicroBatcher(lambda xs: xs, max_batch=8, max_wait=5.0, observe=sizes.append)
        await batcher.start()

        async def late():
            if announce:
                with batcher.incoming(1):
                    await asyncio.sleep(0.05)  # decoding
                    future = batcher.enqueue("late")
            else:
                await asyncio.sleep(0.05)
                future = batcher.enqueue("late")
            return await future

        results = await asyncio.gather(batcher.submit("first"), late())
        await batcher.stop()
        return results, sizes

    assert _run(go(announce=True)) == (["first", "late"], [2])  # waited for the announced image
    assert _run(go(announce=False)) == (["first", "late"], [1, 1])  # nothing on its way: left at once
