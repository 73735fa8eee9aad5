"""The machine's ceiling: the smallest Tornado JSON handler, no database, no logging set up.

Every scenario of the bench is reported as a ratio to this one, measured in the same run.
"""
from __future__ import annotations

import asyncio

from tornado.options import OptionParser
from tornado.web import Application, RequestHandler


class HelloHandler(RequestHandler):
    def get(self) -> None:
        self.write({"hello": "world"})  # a dict: tornado answers it as JSON


async def main() -> None:
    options = OptionParser()
    options.define("port", default=8888, type=int)
    options.parse_command_line()
    Application([(r"/.*", HelloHandler)]).listen(options.port, "127.0.0.1")
    await asyncio.Event().wait()  # until the bench sends SIGTERM


if __name__ == "__main__":
    asyncio.run(main())
