"""pytest plugin (entry point ``pytest11``): registers dldoctor's fixtures and markers."""
