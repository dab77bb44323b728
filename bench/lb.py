"""A stand-in for the TLS-terminating load balancer, for localstripe's webhook calls only.

Production trusts `X-Forwarded-Proto: https` from the balancer and redirects anything else to
HTTPS; localstripe posts its webhooks over plain http with no such header, so it posts them here
and this forwards them to gunicorn with the header added, as the balancer would. (The simulated
buyers send the header themselves: no extra hop for the bulk of the traffic.)

`python bench/lb.py --port 9001 --upstream http://127.0.0.1:9000`
"""

import argparse

from aiohttp import ClientSession, ClientTimeout, web

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def make_app(upstream: str) -> web.Application:
    app = web.Application(client_max_size=10 * 1024 * 1024)

    async def on_startup(app: web.Application) -> None:
        app["client"] = ClientSession(timeout=ClientTimeout(total=30))

    async def on_cleanup(app: web.Application) -> None:
        await app["client"].close()

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = request.host
        headers["X-Forwarded-Proto"] = "https"
        headers["X-Forwarded-For"] = request.remote or "127.0.0.1"
        body = await request.read()
        async with app["client"].request(
            request.method, upstream + request.rel_url.path_qs, data=body, headers=headers,
            allow_redirects=False,
        ) as answer:  # fmt: skip
            payload = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=answer.status, body=payload, headers=out)

    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    web.run_app(make_app(args.upstream), host="127.0.0.1", port=args.port, print=None,
                access_log=None)  # fmt: skip
