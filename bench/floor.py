"""The floor: a bare aiogram 3 relay, one copy per update, no storage, no topics.

What any Telegram support bot costs at least; `bench.telegram` runs it against the
same sandbox as the gateway. Run: python -m bench.floor API_BASE TOKEN WORKSPACE_ID
"""

import asyncio
import sys

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


async def main(api_base: str, token: str, workspace: int) -> None:
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)))
    dispatcher = Dispatcher()

    @dispatcher.message(F.chat.type == "private")
    async def relay(message: Message) -> None:
        await bot.copy_message(workspace, message.chat.id, message.message_id)

    await dispatcher.start_polling(bot, polling_timeout=1)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
