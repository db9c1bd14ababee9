"""Runner: the supervisor (``supervisor.py``) starts the target in a child Python whose agent
(``agent.py``, started by ``child.py``) streams collector records over a channel (``channel.py``);
``builder.py`` turns those records into a Run."""
