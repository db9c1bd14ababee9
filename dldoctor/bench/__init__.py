"""Running dldoctor's reference models: ``bench`` (one model, in this process), ``compare``
(many models x devices, each in its own process) and their table, JSON and HTML outputs."""
