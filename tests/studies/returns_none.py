def study():
    pass
