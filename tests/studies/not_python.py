name: tiny
sections:
  - B
  - C
