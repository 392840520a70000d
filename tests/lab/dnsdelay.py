#!/usr/bin/env python3
"""dnsdelay.py LISTEN_ADDR PORT UPSTREAM_ADDR UPSTREAM_PORT DELAY_MS [LOSS_PERCENT [SEED]]

A UDP DNS relay for the lab that adds a fixed delay to every answer and drops
a share of the queries (deterministically, from SEED): a path with latency and
loss for one perspective, without tc netem (which some kernels lack).
Runs until killed.
"""
import asyncio
import random
import socket
import sys


class Relay(asyncio.DatagramProtocol):
    def __init__(self, upstream, delay, loss, rng):
        self.upstream, self.delay, self.loss, self.rng = upstream, delay, loss, rng
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, client):
        if self.rng.random() * 100 < self.loss:
            return
        asyncio.get_running_loop().create_task(self.forward(data, client))

    async def forward(self, data, client):
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, self.upstream)
            await loop.sock_sendall(sock, data)
            answer = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
        except (OSError, asyncio.TimeoutError):
            return
        finally:
            sock.close()
        await asyncio.sleep(self.delay / 1000.0)
        self.transport.sendto(answer, client)


async def main():
    addr, port, up_addr, up_port, delay = sys.argv[1:6]
    loss = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    seed = int(sys.argv[7]) if len(sys.argv) > 7 else 1
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: Relay((up_addr, int(up_port)), float(delay), loss, random.Random(seed)),
        local_addr=(addr, int(port)))
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
