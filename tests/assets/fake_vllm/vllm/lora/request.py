class LoRARequest:
    def __init__(self, name, int_id, path):
        self.name, self.int_id, self.path = name, int_id, path
