"""Background services (asyncio, no Textual): health pollers, the job tracker, stream
followers, user actions, and the Session that holds them. See session.py."""
